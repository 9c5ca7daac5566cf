package marker_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracemark/tracemark/marker"
)

var (
	benchOff0 = marker.Define0("bench:off0")
	benchOff3 = marker.Define3("bench:off3", marker.String("method"), marker.Int("status"), marker.Duration("latency"))
	benchOff6 = marker.Define6("bench:off6", marker.String("method"), marker.Int("status"), marker.Duration("latency"),
		marker.Uint64("bytes"), marker.Bool("cached"), marker.Float64("ratio"))
	benchOn3 = marker.Define3("bench:on3", marker.String("method"), marker.Int("status"), marker.Duration("latency"))
)

func BenchmarkDisabledFire0(b *testing.B) {
	for range b.N {
		benchOff0.Fire()
	}
}

func BenchmarkDisabledFire3(b *testing.B) {
	for range b.N {
		benchOff3.Fire("GET", 200, time.Millisecond)
	}
}

func BenchmarkDisabledFire6(b *testing.B) {
	for range b.N {
		benchOff6.Fire("GET", 200, time.Millisecond, 512, true, 0.5)
	}
}

func BenchmarkEnabledFireNoopProbe(b *testing.B) {
	p, err := marker.Register("bench:on3", func(*marker.Event) {})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Unregister()
	b.ReportAllocs()
	for b.Loop() {
		benchOn3.Fire("GET", 200, time.Millisecond)
	}
}

func BenchmarkEnabledFireNoopProbeParallel(b *testing.B) {
	p, err := marker.Register("bench:on3", func(*marker.Event) {})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Unregister()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchOn3.Fire("GET", 200, time.Millisecond)
		}
	})
}

var peerFlag atomic.Bool

func BenchmarkPeerAtomicBool(b *testing.B) {
	n := 0
	for range b.N {
		if peerFlag.Load() {
			n++
		}
	}
	_ = n
}

func BenchmarkPeerSlogEnabled(b *testing.B) {
	l := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx := context.Background()
	n := 0
	for range b.N {
		if l.Enabled(ctx, slog.LevelDebug) {
			n++
		}
	}
	_ = n
}

func BenchmarkPeerSlogDebugDisabled(b *testing.B) {
	l := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for range b.N {
		l.Debug("request", "method", "GET", "status", 200, "latency", time.Millisecond)
	}
}

var cloned *marker.Event

// BenchmarkClone measures Event.Clone in a probe (the cost Clone's doc
// states), on top of an enabled Fire of three fields, one a string.
func BenchmarkClone(b *testing.B) {
	m := marker.Define3("bench:clone3", marker.String("method"), marker.Int("status"), marker.Duration("latency"))
	p, err := marker.Register("bench:clone3", func(e *marker.Event) { cloned = e.Clone() })
	if err != nil {
		b.Fatal(err)
	}
	defer p.Unregister()
	b.ReportAllocs()
	for b.Loop() {
		m.Fire("GET", 200, time.Millisecond)
	}
}

// BenchmarkCloneNumbers is BenchmarkClone without a string: one
// allocation.
func BenchmarkCloneNumbers(b *testing.B) {
	m := marker.Define3("bench:clone3n", marker.Int("method"), marker.Int("status"), marker.Duration("latency"))
	p, err := marker.Register("bench:clone3n", func(e *marker.Event) { cloned = e.Clone() })
	if err != nil {
		b.Fatal(err)
	}
	defer p.Unregister()
	b.ReportAllocs()
	for b.Loop() {
		m.Fire(1, 200, time.Millisecond)
	}
}
