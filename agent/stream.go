package agent

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/session"
)

// classesPerFrame bounds the classes of one classes frame, which keeps
// frames far below wire.MaxFramePayload whatever the schemas.
const classesPerFrame = 128

// frameStream sends a session's events to a client as frames.
type frameStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	fw      *wire.FrameWriter
	s       *session.Session
	timeout time.Duration
	sent    int      // classes announced so far
	packets int      // packets of the current drain
	gt      *goTrace // nil unless the stream carries Go's trace
}

// writeErr marks errors of the connection, as opposed to the session's:
// after one there is nobody left to tell.
type writeErr struct{ err error }

func (e *writeErr) Error() string { return "writing to client: " + e.err.Error() }
func (e *writeErr) Unwrap() error { return e.err }

// startStream answers 200 with the frames content type and the hello
// frame. From here on errors travel in frames, not in the status.
func startStream(w http.ResponseWriter, r *http.Request, s *session.Session, h wire.Hello, timeout time.Duration) (*frameStream, error) {
	rc := http.NewResponseController(w)
	// The request is read: lift the read deadline, or the server would
	// cancel the request when it passes while events still flow. The
	// write deadline is renewed for each batch of frames instead.
	_ = rc.SetReadDeadline(time.Time{})
	fs := &frameStream{w: w, rc: rc, fw: wire.NewFrameWriter(w), s: s, timeout: timeout}
	w.Header().Set("Content-Type", wire.ContentTypeFrames)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	h.Protocol, h.Revision = wire.Version, wire.Revision
	h.Session, h.Mode, h.Streams = s.Name(), s.Mode().String(), s.Streams()
	h.Buffer, h.SubBuffer = s.BufferSize(), s.SubBufSize()
	h.Context = contextNames(s.EventContext())
	h.PID, h.Program = os.Getpid(), program()
	h.Clock, h.Env = clockOf(s), traceEnv(s)
	h.Matched = []string{}
	for _, c := range s.Classes() {
		h.Matched = append(h.Matched, c.Marker.Name())
	}
	fs.deadline()
	if err := fs.fw.WriteJSON(wire.FrameHello, h); err != nil {
		return nil, &writeErr{err}
	}
	return fs, fs.flushClasses()
}

func (fs *frameStream) deadline() { _ = fs.rc.SetWriteDeadline(time.Now().Add(fs.timeout)) }

// flushClasses announces new classes and flushes what was written.
func (fs *frameStream) flushClasses() error {
	if err := fs.announce(); err != nil {
		return err
	}
	if err := fs.rc.Flush(); err != nil {
		return &writeErr{err}
	}
	return nil
}

// announce sends the classes the client does not know yet. Session
// classes only grow, and every class of a packet is known before the
// packet is handed out, so calling this before each packet suffices.
func (fs *frameStream) announce() error {
	classes := fs.s.Classes()
	for fs.sent < len(classes) {
		end := min(len(classes), fs.sent+classesPerFrame)
		var frame wire.Classes
		for _, c := range classes[fs.sent:end] {
			frame.Classes = append(frame.Classes, wireClass(c))
		}
		if err := fs.fw.WriteJSON(wire.FrameClasses, frame); err != nil {
			return &writeErr{err}
		}
		fs.sent = end
	}
	return nil
}

func wireClass(c *session.Class) wire.EventClass {
	kinds := make([]string, c.Marker.NumFields())
	for i := range kinds {
		kinds[i] = c.Marker.Field(i).Kind.String()
	}
	return wire.ClassFromCTF(session.EventClassOf(c), kinds)
}

// packet is the callback of Drain and Snapshot. The write deadline is
// renewed for every packet: a large buffer may take a while to send even
// to a client that keeps up.
func (fs *frameStream) packet(p session.Packet) error {
	fs.deadline()
	if err := fs.announce(); err != nil {
		return err
	}
	h := wire.PacketHeader{
		Stream: uint32(p.Stream), Events: uint32(p.Events), Seq: p.Seq,
		BeginTS: p.BeginTS, EndTS: p.EndTS, Discarded: p.Discarded,
	}
	if err := fs.fw.WritePacket(h, p.Data); err != nil {
		return &writeErr{err}
	}
	fs.packets++
	return nil
}

// drain sends what the session recorded since the last drain, and a sync
// frame after it if there was anything.
func (fs *frameStream) drain() error {
	fs.deadline()
	fs.packets = 0
	if err := fs.s.Drain(fs.packet); err != nil {
		return err
	}
	if fs.packets > 0 {
		if err := fs.fw.WriteEmpty(wire.FrameSync); err != nil {
			return &writeErr{err}
		}
	}
	return fs.flushClasses()
}

// stats sends the session's counters.
func (fs *frameStream) stats() error {
	fs.deadline()
	st := wireStats(fs.s.Stats())
	if err := fs.fw.WriteJSON(wire.FrameStats, st); err != nil {
		return &writeErr{err}
	}
	return fs.flushClasses()
}

// end sends the final counters and the end frame. A session error (not a
// write error) is reported in the end frame.
func (fs *frameStream) end(reason string, err error) {
	if err != nil {
		var we *writeErr
		if errors.As(err, &we) {
			return
		}
		reason = wire.EndError
	}
	fs.deadline()
	st := wireStats(fs.s.Stats())
	e := wire.End{Reason: reason, Stats: &st}
	if err != nil {
		code := wire.CodeInternal
		if errors.Is(err, session.ErrMemoryBudget) {
			code = wire.CodeLimit // a snapshot's copy did not fit
		}
		e.Error = wire.Errorf(code, "%v", err)
	}
	if fs.fw.WriteJSON(wire.FrameEnd, e) == nil {
		_ = fs.rc.Flush()
	}
}

func clockOf(s *session.Session) wire.Clock {
	c := session.ClockOf(s)
	return wire.Clock{Name: c.Name, Frequency: c.Frequency, OffsetSeconds: c.OffsetSeconds, Offset: c.Offset, Description: c.Description}
}

// traceEnv is the CTF environment of a trace written from the stream,
// the same keys as session.CreateTrace writes.
func traceEnv(s *session.Session) map[string]string {
	env := map[string]string{
		"domain":       "go",
		"tracer_name":  "tracemark",
		"trace_name":   s.Name(),
		"vpid":         strconv.Itoa(os.Getpid()),
		"procname":     filepath.Base(os.Args[0]),
		"session_mode": s.Mode().String(),
	}
	if h, err := os.Hostname(); err == nil {
		env["hostname"] = h
	}
	return env
}
