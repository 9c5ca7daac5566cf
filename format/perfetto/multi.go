package perfetto

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/tracemark/tracemark/ctf"
)

// Process is one process of a MultiWriter: the id and name its process
// track shows, and its trace's description (as ctf.Reader's Info and
// Classes return them).
type Process struct {
	PID     int64
	Name    string
	Info    ctf.TraceInfo
	Classes []ctf.EventClass
}

// MultiWriter writes the events of several processes, one CTF trace
// each on one clock (a host-wide recording), as one Perfetto trace: each
// process has a process track of its own (its pid and name), with the
// tracks a Writer gives one process below it. A MultiWriter is not safe
// for concurrent use.
type MultiWriter struct {
	ws  []*Writer
	err error // the first write error, of any process
}

// uuidSpan is the range of track uuids of each process of a MultiWriter.
const uuidSpan = 1 << 32

// NewMultiWriter returns a MultiWriter that writes to w the events of
// procs. The fields that opts names must be numeric fields of the classes
// of at least one process, else the error wraps ErrBadField; they apply
// to every process that has them.
func NewMultiWriter(w io.Writer, procs []Process, with ...Option) (*MultiWriter, error) {
	opts := newOptions(with)
	var all []ctf.EventClass
	for _, p := range procs {
		all = append(all, p.Classes...)
	}
	if err := checkRefs(opts, all); err != nil {
		return nil, err
	}
	m := &MultiWriter{}
	for i, p := range procs {
		if p.PID <= 0 || p.PID > math.MaxInt32 {
			return nil, fmt.Errorf("perfetto: process %d (%s): pid %d out of range", i, p.Name, p.PID)
		}
		info := p.Info
		// The process track takes its name from the environment.
		env := make(map[string]string, len(info.Env)+1)
		for k, v := range info.Env {
			env[k] = v
		}
		if p.Name != "" {
			env["procname"] = p.Name
		}
		info.Env = env
		// Sequence ids and uuids are per process: each process's
		// interned names are its own, and its tracks cannot collide
		// with another's.
		pw := newWriter(w, info, p.Classes, opts, uint32(p.PID), uint64(i)+1, uint64(i)*uuidSpan+1)
		m.ws = append(m.ws, pw)
		if pw.err != nil {
			return nil, pw.err
		}
	}
	return m, nil
}

// ErrNoProcess is returned by MultiWriter.WriteEvent for a process index
// out of range.
var ErrNoProcess = errors.New("perfetto: no such process")

// WriteEvent writes ev, an event or a notice of process proc (an index
// into the processes given to NewMultiWriter). Events must come in
// timestamp order per process; the processes may interleave in any way.
// The first write error is returned by this and every later call.
func (m *MultiWriter) WriteEvent(proc int, ev *ctf.Event) error {
	if proc < 0 || proc >= len(m.ws) {
		return fmt.Errorf("%w: %d of %d", ErrNoProcess, proc, len(m.ws))
	}
	if m.err != nil {
		return m.err
	}
	m.err = m.ws[proc].WriteEvent(ev)
	return m.err
}

// Close writes the buffered output of every process. It does not close
// the underlying io.Writer. Closing again does nothing.
func (m *MultiWriter) Close() error {
	if m.err != nil && m.err != ErrClosed {
		return m.err
	}
	var errs []error
	for _, w := range m.ws {
		if err := w.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		m.err = err
		return err
	}
	m.err = ErrClosed
	return nil
}
