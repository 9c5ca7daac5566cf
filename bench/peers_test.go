package bench

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

var (
	off3 = marker.Define3("peerbench:off3", marker.String("method"), marker.Int("status"), marker.Duration("latency"))
	rec3 = marker.Define3("peerbench:record", marker.Int64("status"), marker.Int64("bytes"), marker.String("path"))
)

const path = "/api/users/12345" // 16 bytes

// BenchmarkDisabled3Fields: an event with three fields that nobody wants.
func BenchmarkDisabled3Fields(b *testing.B) {
	b.Run("tracemark", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			off3.Fire("GET", 200, time.Millisecond)
		}
	})
	b.Run("zerolog", func(b *testing.B) {
		l := zerolog.New(io.Discard).Level(zerolog.InfoLevel)
		b.ReportAllocs()
		for b.Loop() {
			l.Debug().Str("method", "GET").Int("status", 200).Dur("latency", time.Millisecond).Msg("")
		}
	})
}

// BenchmarkRecorded3Fields: an event with int64, int64 and a 16-byte
// string, recorded. tracemark writes it into a discard session drained
// every millisecond (as a trace writer would); zerolog encodes it to
// io.Discard without a timestamp.
func BenchmarkRecorded3Fields(b *testing.B) {
	b.Run("tracemark", func(b *testing.B) {
		s, err := session.New("peerbench", session.WithBufferSize(8<<20), session.WithSubBufSize(256<<10))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Enable("peerbench:record", ""); err != nil {
			b.Fatal(err)
		}
		if err := s.Start(); err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					_ = s.Drain(func(session.Packet) error { return nil })
				}
			}
		})
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			i++
			rec3.Fire(i, 1234, path)
		}
		b.StopTimer()
		close(done)
		wg.Wait()
		s.Destroy()
	})
	b.Run("zerolog", func(b *testing.B) {
		l := zerolog.New(io.Discard)
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			i++
			l.Info().Int64("status", i).Int64("bytes", 1234).Str("path", path).Msg("")
		}
	})
}
