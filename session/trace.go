package session

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/ident"
	"github.com/tracemark/tracemark/marker"
)

// TraceWriter writes what a session records into a CTF 1.8 trace
// directory that Babeltrace 2 and Trace Compass read. Call Flush
// periodically (or Run), and Close after the session stopped: Close
// flushes what is left.
type TraceWriter struct {
	s  *Session
	w  *ctf.Writer
	mu sync.Mutex
	// added is how many session classes the trace metadata has.
	added int
	// events and packets written, for progress lines.
	events, packets, bytes uint64
}

// CreateTrace creates a CTF trace in dir for session s.
func CreateTrace(dir string, s *Session) (*TraceWriter, error) {
	info := ctf.TraceInfo{
		Clock: ClockOf(s),
		Env:   traceEnv(s),
	}
	info.EventContext = s.cfg.contextFields()
	w, err := ctf.Create(dir, info)
	if err != nil {
		return nil, fmt.Errorf("session %q: %w", s.cfg.Name, err)
	}
	return &TraceWriter{s: s, w: w}, nil
}

// ClockOf describes the session's timestamps as a CTF clock: monotonic
// nanoseconds, with the offset that turns them into wall-clock time.
func ClockOf(s *Session) ctf.Clock {
	origin := s.Clock()
	sec := origin.Unix()
	ns := origin.Nanosecond()
	return ctf.Clock{
		Name:          "monotonic",
		Frequency:     1_000_000_000,
		OffsetSeconds: sec,
		Offset:        uint64(ns),
		Description:   "Monotonic Clock",
	}
}

func traceEnv(s *Session) map[string]string {
	env := map[string]string{
		"domain":       "go",
		"tracer_name":  "tracemark",
		"trace_name":   s.cfg.Name,
		"vpid":         strconv.Itoa(os.Getpid()),
		"procname":     filepath.Base(os.Args[0]),
		"session_mode": s.cfg.Mode.String(),
	}
	if h, err := os.Hostname(); err == nil {
		env["hostname"] = h
	}
	return env
}

// EventClassOf describes a session class as a CTF event class: the
// fields with the meaning of their kinds, the marker's span declaration
// and module, and for a marker with string or bytes fields the twin id
// of its truncated records.
func EventClassOf(c *Class) ctf.EventClass {
	ec := ctf.EventClass{ID: c.ID, Name: c.Marker.Name()}
	if c.layout.variable {
		ec.Truncation, ec.TruncatedID = true, c.ID|twinBit
	}
	for i := range c.Marker.NumFields() {
		f := c.Marker.Field(i)
		ec.Fields = append(ec.Fields, ctf.Field{Name: f.Name, Type: ctfType(f.Kind), Meaning: ctfMeaning(f.Kind)})
	}
	if s := c.Marker.Span(); s != nil {
		ec.Span = &ctf.Span{Duration: s.Duration, Start: s.Start, Keys: slices.Clone(s.Keys)}
	}
	if m := c.Marker.Module().String(); ident.Printable(m) {
		ec.Module = m // marker.InModule takes any text; a trace, only printable
	}
	return ec
}

// ctfMeaning says which fields are bools, durations, trace ids and span
// ids, so that trace readers can treat them as such.
func ctfMeaning(k marker.Kind) ctf.Meaning {
	switch k {
	case marker.KindBool:
		return ctf.Boolean
	case marker.KindDuration:
		return ctf.Duration
	case marker.KindTraceID:
		return ctf.TraceID
	case marker.KindSpanID:
		return ctf.SpanID
	}
	return ctf.Number
}

func ctfType(k marker.Kind) ctf.FieldType {
	switch {
	case k == marker.KindBool:
		return ctf.FieldType{Kind: ctf.Uint, Bits: 8}
	case k.Signed():
		return ctf.FieldType{Kind: ctf.Int, Bits: k.Bits()}
	case k.Unsigned():
		return ctf.FieldType{Kind: ctf.Uint, Bits: k.Bits()}
	case k.Float():
		return ctf.FieldType{Kind: ctf.Float, Bits: k.Bits()}
	case k == marker.KindString:
		return ctf.FieldType{Kind: ctf.String}
	case k == marker.KindTraceID, k == marker.KindSpanID:
		return ctf.FieldType{Kind: ctf.Bytes, Bits: k.Bits()} // a fixed array
	}
	return ctf.FieldType{Kind: ctf.Bytes}
}

// addClasses appends the metadata of classes the trace does not have yet.
func (t *TraceWriter) addClasses() error {
	classes := t.s.Classes()
	if len(classes) == t.added {
		return nil
	}
	var ecs []ctf.EventClass
	for _, c := range classes[t.added:] {
		ecs = append(ecs, EventClassOf(c))
	}
	if err := t.w.AddEventClasses(ecs); err != nil {
		return err
	}
	t.added = len(classes)
	return nil
}

// write is the callback of Drain and Snapshot.
func (t *TraceWriter) write(p Packet) error {
	if err := t.addClasses(); err != nil {
		return err
	}
	info := ctf.PacketInfo{BeginTS: p.BeginTS, EndTS: p.EndTS, Seq: p.Seq, Discarded: p.Discarded, CPU: uint32(p.Stream)}
	// The records come from the session's own encoder, already walked by
	// the Drain: the trusted write does not walk them again.
	if err := t.w.WriteTrustedPacket(uint32(p.Stream), info, p.Data); err != nil {
		return err
	}
	t.events += uint64(p.Events)
	t.packets++
	t.bytes += uint64(len(p.Data))
	return nil
}

// Flush writes everything the session recorded since the last Flush.
func (t *TraceWriter) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.addClasses(); err != nil {
		return err
	}
	return t.s.Drain(t.write)
}

// Run writes the trace as the buffers fill until ctx is done, then
// returns ctx's error or the first write error. It flushes whenever a
// recording goroutine fills a sub-buffer (see Session.Wait), and at the
// latest interval after the previous flush, which writes the partial
// packets of a quiet buffer. One Run at a time per session.
func (t *TraceWriter) Run(ctx context.Context, interval time.Duration) error {
	for {
		if err := t.Flush(); err != nil {
			return err
		}
		t.s.Wait(ctx.Done(), interval)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Written returns how many events, packets and payload bytes were written.
func (t *TraceWriter) Written() (events, packets, bytes uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.events, t.packets, t.bytes
}

// Close flushes and closes the trace. Stop the session first so that
// nothing is recorded after the last flush.
func (t *TraceWriter) Close() error {
	err := t.Flush()
	if cerr := t.w.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteSnapshot writes what the session's buffers hold right now into a
// new CTF trace in dir, without consuming it or stopping recording: the
// flight recorder's dump.
func WriteSnapshot(s *Session, dir string) error {
	t, err := CreateTrace(dir, s)
	if err != nil {
		return err
	}
	t.mu.Lock()
	err = t.addClasses()
	if err == nil {
		err = s.Snapshot(t.write)
	}
	t.mu.Unlock()
	if cerr := t.w.Close(); err == nil {
		err = cerr
	}
	return err
}
