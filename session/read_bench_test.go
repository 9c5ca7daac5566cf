package session

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/clock"
	"github.com/tracemark/tracemark/internal/ring"
	"github.com/tracemark/tracemark/marker"
)

var (
	walkInts    = marker.Define3("sessbench:walk_ints", marker.Int64("status"), marker.Int64("bytes"), marker.Int32("shard"))
	walk3Fields = marker.Define3("sessbench:walk_3fields", marker.Int32("i"), marker.Int64("v"), marker.String("s"))
	walkStrings = marker.Define3("sessbench:walk_strings", marker.Int64("status"), marker.String("method"), marker.String("path"))
	walkMixed   = marker.Define6("sessbench:walk_mixed", marker.Int64("status"), marker.String("path"),
		marker.Bool("ok"), marker.Duration("took"), marker.Bytes("body"), marker.String("method"))
)

// BenchmarkFinish measures the reader's walk over a drained packet
// (finish: find each record's end, convert its timestamp, count it per
// class), the agent's per-record cost when it drains: ns/event is the
// figure to compare. The packet is a sub-buffer of one marker's records,
// in the cache, its timestamps set to the current tick before each walk
// (off the clock). Classes with strings or bytes are measured with the layout's
// walk (layout.recordSize) and, for comparison, ctf's (generic).
func BenchmarkFinish(b *testing.B) {
	body := []byte("0123456789abcdef0123")
	for _, bc := range []struct {
		name string
		fire func()
	}{
		{"ints", func() { walkInts.Fire(200, 1234, 7) }},
		{"3fields", func() { walk3Fields.Fire(7, 1234, "hello") }},
		{"strings", func() { walkStrings.Fire(200, "GET", "/api/users/12345") }},
		{"mixed", func() { walkMixed.Fire(200, "/api/users/12345", true, 3*time.Millisecond, body, "GET") }},
	} {
		s, err := New("walk", WithSubBufSize(256<<10))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Enable("sessbench:walk_"+bc.name, ""); err != nil {
			b.Fatal(err)
		}
		if err := s.Start(); err != nil {
			b.Fatal(err)
		}
		for range 20000 {
			bc.fire()
		}
		s.Stop()
		// The largest packet, with the ticks the records hold before the
		// drain converts them.
		var ticks []byte
		records := 0
		s.buf.Drain(func(p ring.Packet) error {
			if p.Records > records {
				ticks, records = bytes.Clone(p.Data), p.Records
			}
			return nil
		})
		c := s.class(1)
		var offsets []int // where the records start, by ctf's walk
		for off := 0; off < len(ticks); off += c.layout.fixed {
			offsets = append(offsets, off)
			if c.layout.variable {
				n, err := ctf.RecordSizeFrom(ticks[off:], &c.ec, int(c.layout.ops[0].idx), c.layout.restOff)
				if err != nil {
					b.Fatal(err)
				}
				off += n - c.layout.fixed
			}
		}
		walks := []string{"/layout", "/generic"}
		if !c.layout.variable {
			walks = []string{""}
		}
		for _, walk := range walks {
			b.Run(bc.name+walk, func(b *testing.B) {
				s.genericWalk = walk == "/generic"
				data := make([]byte, len(ticks))
				p := ring.Packet{Data: data, Records: records}
				for b.Loop() {
					b.StopTimer()
					copy(data, ticks)
					// Recent ticks, as a drain finds them: older ones
					// take ToNanos's slow path.
					now := uint64(clock.Ticks())
					for _, off := range offsets {
						binary.LittleEndian.PutUint64(data[off+timestampOffset:], now)
					}
					p.Seq++
					b.StartTimer()
					if _, err := s.finish(p, true); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(records), "ns/event")
				b.ReportMetric(float64(records), "events/packet")
			})
		}
		s.Destroy()
	}
}
