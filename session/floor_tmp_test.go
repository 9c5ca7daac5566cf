package session

import (
	"encoding/binary"
	"testing"

	"github.com/tracemark/tracemark/internal/clock"
	"github.com/tracemark/tracemark/internal/probeabi"
	"github.com/tracemark/tracemark/internal/ring"
	"github.com/tracemark/tracemark/marker"
)

var floorM = marker.Define3("floor:m", marker.Int64("status"), marker.Int64("bytes"), marker.String("path"))

func floorRun(b *testing.B, fn marker.ProbeFunc) {
	p, err := marker.Register("floor:m", fn)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Unregister()
	for i := 0; b.Loop(); i++ {
		floorM.Fire(int64(i), 1234, "/api/users/12345")
	}
}

func BenchmarkFloor(b *testing.B) {
	clock.Calibrate()
	buf, _ := ring.New(ring.Config{SubBufSize: 256 << 10, SubBufCount: 32, Mode: ring.Overwrite, TimestampOffset: 2})
	var sink int64
	b.Run("noop", func(b *testing.B) { floorRun(b, func(e *marker.Event) {}) })
	b.Run("clock", func(b *testing.B) { floorRun(b, func(e *marker.Event) { sink += clock.Now() }) })
	b.Run("ring", func(b *testing.B) {
		floorRun(b, func(e *marker.Event) {
			if w, ok := buf.Reserve(44); ok {
				binary.LittleEndian.PutUint64(w.Bytes()[2:], 5)
				buf.Commit(w)
			}
		})
	})
	b.Run("ring+clock", func(b *testing.B) {
		floorRun(b, func(e *marker.Event) {
			if w, ok := buf.Reserve(44); ok {
				binary.LittleEndian.PutUint64(w.Bytes()[2:], uint64(clock.Now()))
				buf.Commit(w)
			}
		})
	})
	b.Run("ring+clock+fields", func(b *testing.B) {
		floorRun(b, func(e *marker.Event) {
			if w, ok := buf.Reserve(44); ok {
				d := w.Bytes()
				binary.LittleEndian.PutUint64(d[2:], uint64(clock.Now()))
				binary.LittleEndian.PutUint64(d[10:], e.Field(0).Bits())
				binary.LittleEndian.PutUint64(d[18:], e.Field(1).Bits())
				copy(d[26:42], e.Field(2).Str())
				buf.Commit(w)
			}
		})
	})
	_ = sink
}

func BenchmarkFloorLayout(b *testing.B) {
	clock.Calibrate()
	buf, _ := ring.New(ring.Config{SubBufSize: 256 << 10, SubBufCount: 32, Mode: ring.Overwrite, TimestampOffset: 2})
	l := newLayout(floorM.Info(), 1024)
	b.Run("layout", func(b *testing.B) {
		floorRun(b, func(e *marker.Event) {
			var ln lengths
			f := &probeabi.Of(e).Fields
			n := l.measure(f, &ln)
			if w, ok := buf.Reserve(n); ok {
				l.encode(w.Bytes(), 3, clock.Now(), f, &ln)
				buf.Commit(w)
			}
		})
	})
	b.Run("session", func(b *testing.B) {
		s, _ := New(Config{Name: "x", Mode: Overwrite, BufferSize: 8 << 20, SubBufSize: 256 << 10})
		s.Enable("floor:m", "")
		s.Start()
		defer s.Destroy()
		for i := 0; b.Loop(); i++ {
			floorM.Fire(int64(i), 1234, "/api/users/12345")
		}
	})
}
