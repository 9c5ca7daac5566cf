package main

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
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
	ss, counts := m.sink.(*statsSink)
	if counts {
		// stats: the process's counts go out, under its own resource,
		// rather than its events.
		c.onRecord = func(rec *wire.Record) error { return m.sink.record(r, rec) }
		ss.exportEach(r, c, o)
	} else {
		c.onRecord = o.hook(func(rec *wire.Record) error { return m.sink.record(r, rec) })
		o.track(c)
	}
	c.onSync = func() error { return m.sink.sync(r) }
	m.setCapture(r, c)
	r.err = c.run()
	_ = m.sink.sync(r)
	if counts {
		m.finishCounts(r, c)
	} else {
		m.finishOTLP(o)
	}
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
	// viewMu orders the table's drawing (tick) and the warnings printed
	// over it (warn), apart from mu, which every event takes.
	viewMu sync.Mutex
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
	if r.counts != nil {
		// Only r's capture goroutine uses its own aggregator.
		if err := r.counts.g.add(rec); err != nil {
			return err
		}
	}
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
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	s.view.show(buf.String())
}

// warn prints a line on w above the live table, which the next tick
// redraws.
func (s *statsSink) warn(w io.Writer, line string) {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	s.view.erase()
	fmt.Fprintln(w, line)
}

func (s *statsSink) finish(m *multiRecorder) error {
	s.viewMu.Lock()
	s.view.erase()
	s.viewMu.Unlock()
	_, lost, procs := m.totals()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.asJSON {
		return writeJSON(m.a.stdout, s.g.result(lost))
	}
	s.g.render(m.a.stdout, fmt.Sprintf("%d events from %d processes in %.1fs, %d lost", s.g.total, procs, time.Since(s.start).Seconds(), lost))
	return nil
}

// procCounts is the aggregation of one process that stats --all --otlp
// exports under that process's resource: the same keys as the table,
// less pid and program, which the resource carries (process.pid,
// process.executable.name). Its fields belong to the process's capture
// goroutine.
type procCounts struct {
	g  *aggregator
	om *otlpMetrics
}

// exportEach makes r's counts go out through exporter o, after every
// stats frame of its recording (as stats --otlp does for one process) and
// once more by finishCounts. A nil o (no --otlp) does nothing.
func (s *statsSink) exportEach(r *procRec, c *capture, o *otlpOut) {
	if o == nil {
		return
	}
	spec := s.g.aggSpec
	spec.top = 0 // every row goes out, as with one process
	spec.by = slices.DeleteFunc(slices.Clone(spec.by), func(f string) bool { return f == fieldPID || f == fieldProgram })
	pc := &procCounts{g: newAggregator(spec), om: &otlpMetrics{o: o}}
	r.counts = pc
	c.onStats = func() { pc.om.update(pc.g.metrics(c.started, time.Now(), c.lost())) }
}

// finishCounts exports r's final counts, if stats --all --otlp, and says
// so on stderr. A refusal by the collector fails the command.
func (m *multiRecorder) finishCounts(r *procRec, c *capture) {
	pc := r.counts
	if pc == nil {
		return
	}
	var buf strings.Builder
	err := pc.om.finish(&buf, pc.g.metrics(c.started, time.Now(), c.lost()), m.a.timeout)
	m.mu.Lock()
	defer m.mu.Unlock()
	io.WriteString(m.a.stderr, buf.String())
	if err != nil && m.otlpErr == nil {
		m.otlpErr = fmt.Errorf("%s%w", pc.om.o.prefix, err)
	}
}
