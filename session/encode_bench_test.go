package session

import (
	"testing"

	"github.com/tracemark/tracemark/internal/probeabi"
	"github.com/tracemark/tracemark/internal/rt"
	"github.com/tracemark/tracemark/marker"
)

var encBench = marker.Define3("sessbench:encode", marker.Int64("status"), marker.Int64("bytes"), marker.String("path"))

// BenchmarkEncode measures measure+encode of a 3-field event alone.
func BenchmarkEncode(b *testing.B) { benchEncode(b) }

// BenchmarkEncodeTID is BenchmarkEncode with the thread id (WithThreadID):
// the difference is what the id costs the event.
func BenchmarkEncodeTID(b *testing.B) {
	if err := rt.CheckThreadID(); err != nil {
		b.Skip(err)
	}
	benchEncode(b, ContextVTID)
}

// BenchmarkEncodeAllContext is BenchmarkEncode with the four context
// fields of record --context pid,procname,cpu,tid.
func BenchmarkEncodeAllContext(b *testing.B) {
	if err := rt.CheckThreadID(); err != nil {
		b.Skip(err)
	}
	benchEncode(b, ContextPID, ContextProcname, ContextCPU, ContextTID)
}

func benchEncode(b *testing.B, fields ...ContextField) {
	cx, err := newCtxLayout(fields)
	if err != nil {
		b.Fatal(err)
	}
	cb := newContextBlocks(fields, 1)
	blk := cb.block(0)
	l := newLayout(encBench.Info(), 1024, cx)
	buf := make([]byte, 256)
	p, _ := marker.Register("sessbench:encode", func(e *marker.Event) {
		f := &probeabi.Of(e).Fields
		l.encode(buf[:l.measure(f)], 1, 12345, f, blk)
	})
	defer p.Unregister()
	for b.Loop() {
		encBench.Fire(200, 1234, "/api/users/12345")
	}
}

// BenchmarkFireNoop is the same firing with a probe that does nothing, to
// subtract.
func BenchmarkFireNoop(b *testing.B) {
	p, _ := marker.Register("sessbench:encode", func(e *marker.Event) {})
	defer p.Unregister()
	for b.Loop() {
		encBench.Fire(200, 1234, "/api/users/12345")
	}
}
