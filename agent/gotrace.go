package agent

import (
	"runtime/trace"
	"sync"

	"github.com/tracemark/tracemark/internal/wire"
)

// goTrace runs Go's execution tracer for a recording (RecordRequest.
// GoTrace) and keeps what it writes until the stream sends it. Markers
// that the recording enables log their events into it (package marker).
type goTrace struct {
	mu    sync.Mutex
	buf   []byte // written by the tracer, not sent yet
	spare []byte
	once  sync.Once
}

// startGoTrace starts Go's execution tracer. Only one runs in a process.
func startGoTrace() (*goTrace, error) {
	g := &goTrace{}
	if err := trace.Start(g); err != nil {
		return nil, wire.Errorf(wire.CodeConflict, "cannot capture Go's execution trace: %v", err)
	}
	return g, nil
}

// Write is called by the tracer's goroutine.
func (g *goTrace) Write(p []byte) (int, error) {
	g.mu.Lock()
	g.buf = append(g.buf, p...)
	g.mu.Unlock()
	return len(p), nil
}

// take returns what the tracer wrote since the last call; the slice is
// valid until the next call.
func (g *goTrace) take() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.buf
	g.buf, g.spare = g.spare[:0], b
	return b
}

// stop stops the tracer, which first writes all it holds. It may be
// called more than once.
func (g *goTrace) stop() { g.once.Do(trace.Stop) }

// sendGoTrace sends what Go's tracer wrote since the last call, in
// frames of at most wire.MaxFramePayload bytes.
func (fs *frameStream) sendGoTrace() error {
	if fs.gt == nil {
		return nil
	}
	b := fs.gt.take()
	if len(b) == 0 {
		return nil
	}
	fs.deadline()
	for len(b) > 0 {
		n := min(len(b), wire.MaxFramePayload)
		if err := fs.fw.WriteBytes(wire.FrameGoTrace, b[:n]); err != nil {
			return &writeErr{err}
		}
		b = b[n:]
	}
	if err := fs.rc.Flush(); err != nil {
		return &writeErr{err}
	}
	return nil
}
