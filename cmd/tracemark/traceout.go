package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

// traceOut writes a CTF trace from an event stream: the records travel
// unchanged from the process's buffers into the packets of the trace, so
// a remote recording is the same trace the process would write itself.
//
// The packets are written on a goroutine of their own (traceQueue), so
// that a stalled write does not stop the capture: the event classes are
// added at once, before the packets queued ahead of them are written,
// which the trace allows (classes are only ever added).
type traceOut struct {
	w   *ctf.Writer
	dir string
	ctx *eventContext // record --context, or nil
	q   *traceQueue
}

// newTraceOut returns a traceOut writing w, the trace in dir.
func newTraceOut(w *ctf.Writer, dir string, ectx *eventContext) *traceOut {
	t := &traceOut{w: w, dir: dir, ctx: ectx}
	t.q = newTraceQueue(traceBytes, func(stream uint32, p ctf.PacketInfo, recs []byte) error {
		// The records are the agent's session's, written by its
		// encoder: the trusted write does not walk them (see
		// ctf.Writer.WriteTrustedPacket).
		if err := w.WriteTrustedPacket(stream, p, recs); err != nil {
			return fmt.Errorf("trace %s: %w", dir, err)
		}
		return nil
	})
	return t
}

// checkTraceDir fails early, before recording anything, if dir cannot
// become a trace of its own: it holds a trace already, it is not a
// directory, or it holds anything else (Babeltrace and tracemark read
// every file of a trace directory as part of the trace).
func checkTraceDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "metadata")); err == nil {
		return usagef("%s already holds a trace; choose another -o", dir)
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("-o %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return usagef("-o %s is a file, not a directory; choose another -o", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("-o %s: %w", dir, err)
	}
	if len(ents) > 0 {
		names := make([]string, 0, 3)
		for _, e := range ents[:min(len(ents), 3)] {
			names = append(names, e.Name())
		}
		more := ""
		if len(ents) > 3 {
			more = fmt.Sprintf(" and %d more", len(ents)-3)
		}
		return usagef("%s is not empty (it holds %s%s) and is not a trace: a trace needs a directory of its own; choose another -o", dir, strings.Join(names, ", "), more)
	}
	return nil
}

// createTrace creates the trace described by a stream's hello frame.
func createTrace(dir string, h wire.Hello) (*traceOut, error) {
	return createTraceCtx(dir, h, nil)
}

// createTraceCtx is createTrace with context fields in every event. The
// records of a stream with thread ids get vtid at least.
func createTraceCtx(dir string, h wire.Hello, ectx *eventContext) (*traceOut, error) {
	if ectx == nil {
		ectx = newEventContext(nil, h)
	}
	if err := ectx.check(h); err != nil {
		return nil, err
	}
	env := make(map[string]string, len(h.Env))
	for k, v := range h.Env {
		env[k] = clean(v) // the process names itself; keep the metadata valid
	}
	info := ctf.TraceInfo{
		Clock: ctf.Clock{
			Name: h.Clock.Name, Frequency: h.Clock.Frequency, OffsetSeconds: h.Clock.OffsetSeconds,
			Offset: h.Clock.Offset, Description: h.Clock.Description,
		},
		Env: env,
	}
	if ectx != nil {
		info.EventContext = ectx.fields
	}
	w, err := ctf.Create(dir, info)
	if err != nil {
		return nil, err
	}
	return newTraceOut(w, dir, ectx), nil
}

func (t *traceOut) addClasses(cs []wire.EventClass) error {
	ecs := make([]ctf.EventClass, len(cs))
	for i := range cs {
		ec, err := cs[i].CTF()
		if err != nil {
			return err
		}
		ecs[i] = ec
	}
	if err := t.w.AddEventClasses(ecs); err != nil {
		return fmt.Errorf("trace %s: %w", t.dir, err)
	}
	if t.ctx != nil {
		t.ctx.addClasses(ecs)
	}
	return nil
}

// packet queues a packet of stream s, the frame s.Next returned last,
// for writing. Its records may still be read until the next frame.
func (t *traceOut) packet(s *client.Stream, h wire.PacketHeader, recs []byte) error {
	p := ctf.PacketInfo{BeginTS: h.BeginTS, EndTS: h.EndTS, Seq: h.Seq, Discarded: h.Discarded, CPU: h.Stream}
	if t.ctx != nil {
		// It rewrites the records in place (the host's thread ids).
		if _, err := t.ctx.insert(h.Stream, recs); err != nil {
			return fmt.Errorf("trace %s: %w", t.dir, err)
		}
	}
	// The frame's buffer goes with the packet: the stream reads the
	// next frames into one written already.
	return t.q.give(h.Stream, p, recs, s.Swap(t.q.spare()))
}

// diskBehind is how many bytes queued for the disk the progress line
// shows: more than the writer takes at a time, so the disk is behind.
const diskBehind = 8 << 20

// behind is the progress line's part for a disk that is behind: how much
// of what the line counts is not yet in the file, or "".
func (t *traceOut) behind() string {
	if t == nil {
		return ""
	}
	if n := t.q.backlog(); n >= diskBehind {
		return "  " + humanBytes(uint64(n)) + " not yet on disk"
	}
	return ""
}

// flush has the packets queued written soon, not only once a megabyte of
// them is (the capture calls it at each stats, sync and end frame, so the
// trace lags by at most a stats interval), and returns the first write
// error so far.
func (t *traceOut) flush() error { return t.q.flush() }

// close writes the packets queued and closes the trace; it returns the
// first error of either.
func (t *traceOut) close() error {
	t.q.stop()
	return t.finish()
}

// closeLater is close for a caller that goes on capturing meanwhile (the
// daemon's rotation, which a disk that is behind would otherwise stop):
// the trace takes no packet after it returns, and the result of close
// comes on the channel.
func (t *traceOut) closeLater() <-chan error {
	t.q.stop()
	done := make(chan error, 1)
	go func() { done <- t.finish() }()
	return done
}

// finish waits for the packets queued, stopped, to be written, and
// closes the writer.
func (t *traceOut) finish() error {
	qerr := t.q.wait()
	if err := t.w.Close(); qerr == nil {
		return err
	}
	return qerr
}
