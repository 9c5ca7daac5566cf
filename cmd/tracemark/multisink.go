package main

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

// multiSink receives the events of a host-wide stream or count. Its
// methods run on the capture goroutines of the processes, concurrently.
type multiSink interface {
	verb() string
	// record and sync are the capture hooks of process r.
	record(r *procRec, rec *wire.Record) error
	sync(r *procRec) error
	interval() time.Duration
	tick(m *multiRecorder)
	finish(m *multiRecorder) error
}

// runSink reads the stream of one process into the sink.
func (m *multiRecorder) runSink(r *procRec, s *client.Stream) {
	fmt.Fprintf(m.a.stderr, "Attached to pid %d (%s): %d markers\n", r.ag.PID, clean(r.program), len(s.Hello.Matched))
	r.cc = newClockConv(s.Hello.Clock)
	c := newCapture(s, nil)
	o := m.startOTLP(r, s)
	c.onRecord = o.hook(func(rec *wire.Record) error { return m.sink.record(r, rec) })
	c.onSync = func() error { return m.sink.sync(r) }
	o.track(c)
	m.setCapture(r, c)
	r.err = c.run()
	_ = m.sink.sync(r)
	m.finishOTLP(o)
	why := "stream cut"
	if r.c.end != nil {
		why = r.c.end.Reason
	}
	if why != wire.EndStopped {
		fmt.Fprintf(m.a.stderr, "pid %d (%s) ended (%s) after %d events\n", r.ag.PID, clean(r.program), why, r.c.events)
	}
}

// setCapture gives r its capture, under m.mu: totals reads it from the
// main goroutine while r's own goroutine runs it.
func (m *multiRecorder) setCapture(r *procRec, c *capture) {
	m.mu.Lock()
	r.c = c
	m.mu.Unlock()
}

// totals returns the events and lost events of every process.
func (m *multiRecorder) totals() (events, lost uint64, procs int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.procs {
		if r.c != nil {
			events += r.c.published.events.Load()
			lost += r.c.published.lost.Load()
			procs++
		}
	}
	return events, lost, procs
}

// streamSink prints events as `stream` does, each line naming its
// process: TIME PID PROGRAM marker: fields.
type streamSink struct {
	mu  sync.Mutex
	out *bufio.Writer
	// asJSON prints each event in the jsonl schema instead, with the
	// process as its "pid" and "procname" keys (as convert DIR --to
	// jsonl gives them).
	asJSON bool
}

func (*streamSink) verb() string            { return "Streaming" }
func (*streamSink) interval() time.Duration { return time.Second }
func (*streamSink) tick(*multiRecorder)     {}
func (s *streamSink) record(r *procRec, rec *wire.Record) error {
	if s.asJSON {
		if r.js == nil {
			r.js = newJSONLines(r.cc)
			r.js.w.SetProcess(int64(r.ag.PID), r.program)
		}
		text, err := r.js.format(rec, r.c.stream)
		if err != nil {
			return err
		}
		r.batch = append(r.batch, line{ts: rec.TS, text: text})
		return nil
	}
	text := formatRecord(nil, r.cc, rec)
	// formatRecord starts with the time: the process follows it.
	if i := bytes.IndexByte(text, ' '); i >= 0 {
		b := make([]byte, 0, len(text)+24)
		b = append(b, text[:i+1]...)
		b = strconv.AppendInt(b, int64(r.ag.PID), 10)
		b = append(b, ' ')
		b = append(b, clean(r.program)...)
		text = append(b, text[i:]...)
	}
	r.batch = append(r.batch, line{ts: rec.TS, text: text})
	return nil
}

func (s *streamSink) sync(r *procRec) error {
	slices.SortStableFunc(r.batch, func(x, y line) int { return cmp.Compare(x.ts, y.ts) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range r.batch {
		s.out.Write(l.text)
	}
	r.batch = r.batch[:0]
	return s.out.Flush()
}

func (s *streamSink) finish(m *multiRecorder) error {
	events, lost, procs := m.totals()
	fmt.Fprintf(m.a.stderr, "%d events from %d processes, %d lost\n", events, procs, lost)
	return nil
}

// statsSink counts the events of every process in one aggregator, the
// process being two more fields of every event: pid and program, which
// --by and the table take like any field.
type statsSink struct {
	mu     sync.Mutex
	g      *aggregator
	asJSON bool
	every  time.Duration
	view   *liveView
	start  time.Time
}

// Process fields that stats --all adds to every event.
const (
	fieldPID     = "pid"
	fieldProgram = "program"
)

func (*statsSink) verb() string              { return "Counting" }
func (s *statsSink) interval() time.Duration { return s.every }

// extend returns the class with the process fields, made once per class.
func (r *procRec) extend(c *wire.EventClass) *wire.EventClass {
	if e := r.ext[c]; e != nil {
		return e
	}
	if r.ext == nil {
		r.ext = map[*wire.EventClass]*wire.EventClass{}
	}
	e := *c
	e.Fields = append(slices.Clip(c.Fields), wire.ClassField{Name: fieldPID, Type: "int64", Kind: "int64"},
		wire.ClassField{Name: fieldProgram, Type: "string", Kind: "string"})
	r.ext[c] = &e
	return &e
}

func (s *statsSink) record(r *procRec, rec *wire.Record) error {
	x := *rec
	x.Class = r.extend(rec.Class)
	x.Fields = append(slices.Clip(rec.Fields), ctf.IntValue(int64(r.ag.PID)), ctf.StringValue(r.program))
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.g.add(&x)
}

func (*statsSink) sync(*procRec) error { return nil }

func (s *statsSink) tick(m *multiRecorder) {
	_, lost, procs := m.totals()
	var buf bytes.Buffer
	s.mu.Lock()
	s.g.render(&buf, fmt.Sprintf("%s: %d events from %d processes, %d lost", time.Since(s.start).Round(time.Second), s.g.total, procs, lost))
	s.mu.Unlock()
	s.view.show(buf.String())
}

func (s *statsSink) finish(m *multiRecorder) error {
	s.view.erase()
	_, lost, procs := m.totals()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.asJSON {
		return writeJSON(m.a.stdout, s.g.result(lost))
	}
	s.g.render(m.a.stdout, fmt.Sprintf("%d events from %d processes in %.1fs, %d lost", s.g.total, procs, time.Since(s.start).Seconds(), lost))
	return nil
}
