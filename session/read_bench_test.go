package session

import (
	"bytes"
	"testing"
	"time"

	"github.com/tracemark/tracemark/internal/ring"
	"github.com/tracemark/tracemark/marker"
)

var (
	walkInts  = marker.Define3("sessbench:walk_ints", marker.Int64("status"), marker.Int64("bytes"), marker.Int32("shard"))
	walkMixed = marker.Define6("sessbench:walk_mixed", marker.Int64("status"), marker.String("path"),
		marker.Bool("ok"), marker.Duration("took"), marker.Bytes("body"), marker.String("method"))
)

// BenchmarkFinish measures the reader's walk over a drained packet
// (finish: find each record's end, convert its timestamp, count it per
// class), the agent's per-record cost when it drains. ns/record is the
// figure to compare.
func BenchmarkFinish(b *testing.B) {
	body := []byte("0123456789abcdef0123")
	for _, bc := range []struct {
		name string
		fire func()
	}{
		{"ints", func() { walkInts.Fire(200, 1234, 7) }},
		{"mixed", func() { walkMixed.Fire(200, "/api/users/12345", true, 3*time.Millisecond, body, "GET") }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New("walk", WithBufferSize(1<<20), WithSubBufSize(64<<10))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Destroy()
			if _, err := s.Enable("sessbench:walk_*", ""); err != nil {
				b.Fatal(err)
			}
			if err := s.Start(); err != nil {
				b.Fatal(err)
			}
			for range 1000 {
				bc.fire()
			}
			s.Stop()
			var data []byte
			records := 0
			if err := s.Drain(func(p Packet) error {
				if p.Events > records {
					data, records = bytes.Clone(p.Data), p.Events
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			if records == 0 {
				b.Fatal("no records")
			}
			p := ring.Packet{Shard: 0, Seq: 1 << 40, Data: data, Records: records}
			for b.Loop() {
				if _, err := s.finish(p, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(records), "ns/record")
		})
	}
}
