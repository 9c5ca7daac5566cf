package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/procfind"
	"github.com/tracemark/tracemark/internal/wire"
)

// addToRecord adds the host-wide flags to record and says how they work.
func (m *multiFlags) addToRecord(cmd *cobra.Command) {
	m.add(cmd)
	cmd.Flags().StringSliceVar(&m.context, "context", nil, "add these fields to every event, in the CTF stream event context, as lttng add-context does (the process records them after each event's header, a nanosecond or two an event each; needs a program built with tracemark protocol 1.2): "+contextHelp)
	cmd.Long += `

Host-wide: --all records every instrumented process you may reach (for
root: of every user, and inside containers), --name GLOB those whose
program name matches, and -p repeated the processes named. Processes that
start during the recording and match are attached within a second. The
output directory then holds one trace per process, named like LTTng's
(PROGRAM-PID-START), all on one clock, so that 'babeltrace2 DIR' and
'tracemark summary DIR' read them as one timeline. A process that exits
leaves a complete trace; the recording goes on.`
	cmd.Example += "\n" + example(
		"sudo tracemark record --all -e 'http:*' -o host-trace   # every process, also later ones",
		"tracemark record --name 'api-*' -e 'db:*' --duration 1m",
		"tracemark record -p 1234 -p 5678 -e 'http:*'")
}

// multiOpts are the options of a host-wide command.
type multiOpts struct {
	sink    multiSink   // stream and stats: where events go instead of traces
	context []string    // record --context
	otlp    *otlpTarget // --otlp: an exporter per process
	// noOutput (--no-output) writes no trace: the events go to the
	// exporters only.
	noOutput bool
}

// multiRecorder records many processes into one directory of traces.
type multiRecorder struct {
	a    *app
	req  wire.RecordRequest
	out  string
	sel  selector
	base clockBase
	// begun is when the recording started: processes found after it
	// started later, and their attach latency is measured.
	begun time.Time
	// sink, if set, gets the events instead of trace files (stream and
	// stats --all).
	sink multiSink
	// context names the fields of --context.
	context []string
	// noOutput (--no-output): no trace directory, the events go to the
	// exporters only.
	noOutput bool
	// otlp, if set, exports the events of each process to a collector,
	// the process being the resource (--otlp).
	otlp *otlpTarget

	ctx context.Context // cancelled by a second signal: give up waiting
	wg  sync.WaitGroup

	mu       sync.Mutex
	procs    []*procRec
	stopping bool
	ended    chan struct{} // receives after every recording that ended
	otlpErr  error         // the first refusal by the collector
}

// procRec is the recording of one process.
type procRec struct {
	ag      procfind.Agent
	program string
	dir     string
	client  *client.Client
	s       *client.Stream
	c       *capture
	late    bool          // the process appeared after the recording began
	attach  time.Duration // from its socket's creation to the first frame
	err     error
	done    bool
	clockOK bool
	cc      clockConv  // a sink's: to wall-clock time
	batch   []line     // a stream's events waiting for the end of their batch
	js      *jsonLines // stream --json's formatter, with this process's keys
	ext     map[*wire.EventClass]*wire.EventClass
	counts  *procCounts // stats --all --otlp: this process's own counts
}

// runMulti is `tracemark record` host-wide, or with a sink stream and
// stats.
func runMulti(ctx context.Context, a *app, sel selector, req wire.RecordRequest, out string, o *multiOpts) error {
	sink := o.sink
	if sink == nil && !o.noOutput {
		if out == "" {
			out = "tracemark-host-" + time.Now().Format("20060102-150405")
		}
		if err := checkTraceDir(out); err != nil {
			return err
		}
		if err := os.MkdirAll(out, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", out, err)
		}
	}
	// One duration for all: processes attached later stop with the rest.
	total, _ := time.ParseDuration(req.Duration)
	req.Duration = ""
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := &multiRecorder{a: a, req: req, out: out, sel: sel, base: newClockBase(), ctx: ctx, ended: make(chan struct{}, 1), sink: sink, context: o.context, otlp: o.otlp, noOutput: o.noOutput}
	if m.otlp != nil {
		// Checked once here rather than failing every process.
		if _, err := otlp.ProcessResource(otlp.Process{}); err != nil {
			return usagef("--otlp: %v", err)
		}
	}

	// The processes there now, checked against -p before anything starts.
	now := a.discoverHost(ctx)
	for _, pid := range sel.pids {
		if !slices.ContainsFunc(now, func(p hostProc) bool { return p.PID == pid && p.err == nil }) {
			return fmt.Errorf("%w: -p %d: no instrumented process with that pid answers (tracemark ps --all lists them)", client.ErrNoAgent, pid)
		}
	}
	for _, n := range sel.names {
		if !slices.ContainsFunc(now, func(p hostProc) bool { return p.err == nil && p.info.Program == n }) && !sel.watches() {
			return fmt.Errorf("%w: -p %s: no instrumented process runs it", client.ErrNoAgent, n)
		}
	}
	until := "Ctrl-C to stop"
	if total > 0 {
		until = "for " + total.String() + ", Ctrl-C to stop early"
	}
	what := "the processes given"
	switch {
	case sel.all:
		what = "every instrumented process"
	case sel.glob != "":
		what = fmt.Sprintf("the processes named %q", sel.glob)
	}
	switch {
	case sink != nil:
		fmt.Fprintf(a.stderr, "%s %s; %s\n", sink.verb(), what, until)
	case o.noOutput:
		fmt.Fprintf(a.stderr, "Recording %s for the collector only (--no-output); %s\n", what, until)
	default:
		fmt.Fprintf(a.stderr, "Recording %s into %s; %s\n", what, out, until)
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var timer, tick <-chan time.Time
	if sink != nil {
		tk := time.NewTicker(sink.interval())
		defer tk.Stop()
		tick = tk.C
	}
	if total > 0 {
		t := time.NewTimer(total)
		defer t.Stop()
		timer = t.C
	}

	m.begun = time.Now()
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		// Each new process is asked for its info on its own goroutine,
		// so that a slow agent delays no other.
		procfind.Watch(wctx, procfind.Options{AllNamespaces: true}, func(ag procfind.Agent) { go m.found(ag) })
	}()
	reason := ""
	for reason == "" {
		select {
		case <-sigs:
			reason = "stopped"
		case <-timer:
			reason = "duration"
		case <-tick:
			sink.tick(m)
		case <-m.ended:
			if !sel.watches() && m.allDone() {
				reason = "every process ended"
			}
		}
	}
	stopWatch()
	<-watched
	m.stopAll()
	go func() {
		<-sigs
		fmt.Fprintln(a.stderr, "\ninterrupted: closing without waiting for the last events")
		cancel()
	}()
	m.wg.Wait()
	var err error
	if sink != nil {
		err = sink.finish(m)
	} else {
		err = m.summary(reason)
	}
	if err == nil {
		err = m.otlpErr
	}
	return err
}

// startOTLP starts the export of process r's recording s, if --otlp.
// Without an exporter (a nil *otlpOut) the hooks do nothing.
func (m *multiRecorder) startOTLP(r *procRec, s *client.Stream) *otlpOut {
	o, err := startOTLPFor(m.ctx, m.otlp, r.client, s.Hello, r.ag.PID)
	if err != nil {
		fmt.Fprintf(m.a.stderr, "pid %d (%s): --otlp: %v\n", r.ag.PID, clean(r.program), err)
		return nil
	}
	if o != nil {
		o.prefix = fmt.Sprintf("pid %d (%s): ", r.ag.PID, clean(r.program))
		o.warn = func(line string) {
			if ss, ok := m.sink.(*statsSink); ok {
				ss.warn(m.a.stderr, line)
				return
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			fmt.Fprintln(m.a.stderr, line)
		}
	}
	return o
}

// finishOTLP sends what process r's exporter holds and says what it sent:
// with the summary for record, on stderr for stream (whose standard
// output is the events). A refusal by the collector fails the command.
func (m *multiRecorder) finishOTLP(o *otlpOut) {
	w := m.a.stdout
	if m.sink != nil {
		w = m.a.stderr
	}
	var buf strings.Builder
	err := o.finish(&buf, m.a.timeout)
	m.mu.Lock()
	defer m.mu.Unlock()
	io.WriteString(w, buf.String()) // under m.mu: the processes finish concurrently
	if err != nil && m.otlpErr == nil {
		m.otlpErr = err
	}
}

// found starts recording a process the watcher found, if it matches.
func (m *multiRecorder) found(ag procfind.Agent) {
	p := m.a.infoOfNew(m.ctx, ag)
	if !m.sel.match(p) {
		return
	}
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return
	}
	r := &procRec{ag: ag, program: p.info.Program, client: client.NewClient(ag.Socket)}
	// A process whose agent started after the recording began is late:
	// its attach latency is measured from its socket's creation.
	if fi, err := os.Stat(ag.Socket); err == nil && fi.ModTime().After(m.begun) {
		r.late = true
	}
	m.procs = append(m.procs, r)
	m.wg.Add(1)
	m.mu.Unlock()
	go m.record(r, p.info.Started)
}

func (m *multiRecorder) record(r *procRec, started time.Time) {
	defer m.wg.Done()
	defer func() {
		m.mu.Lock()
		r.done = true
		m.mu.Unlock()
		select {
		case m.ended <- struct{}{}:
		default:
		}
	}()
	s, err := recordChecked(m.ctx, r.client, m.req)
	if err != nil {
		r.err = err
		fmt.Fprintf(m.a.stderr, "pid %d (%s): %v\n", r.ag.PID, clean(r.program), err)
		return
	}
	defer s.Close()
	if r.late {
		if fi, err := os.Stat(r.ag.Socket); err == nil {
			r.attach = time.Since(fi.ModTime())
		}
	}
	m.mu.Lock()
	r.s = s
	stopping := m.stopping
	m.mu.Unlock()
	if stopping { // stopAll ran while the recording started
		m.stop(r)
	}
	if m.sink != nil {
		m.runSink(r, s)
		return
	}
	var trace *traceOut
	into := "the collector only (--no-output)"
	if !m.noOutput {
		r.dir = filepath.Join(m.out, procDirName(s.Hello.Program, r.ag.PID, started))
		clk, ok := m.base.clockFor(s.Hello, r.ag.PID)
		r.clockOK = ok
		if !ok {
			fmt.Fprintf(m.a.stderr, "warning: pid %d records with clock %q, not monotonic nanoseconds: its trace keeps its own clock and will not merge exactly\n", r.ag.PID, s.Hello.Clock.Name)
		}
		var err error
		if trace, err = createProcTrace(r.dir, s.Hello, clk, r.ag, newEventContext(m.context, s.Hello)); err != nil {
			r.err = err
			m.stop(r)
			fmt.Fprintf(m.a.stderr, "pid %d (%s): %v\n", r.ag.PID, clean(r.program), err)
			return
		}
		into = r.dir
	}
	o := m.startOTLP(r, s)
	if o == nil && m.noOutput {
		// Its exporter could not start (said above): without a trace
		// the events would go nowhere.
		r.err = errors.New("--no-output and no exporter")
		m.stop(r)
		return
	}
	in := ""
	if r.ag.Container != "" {
		in = fmt.Sprintf(" in %s as pid %d", clean(r.ag.Container), r.ag.NSPID)
	}
	fmt.Fprintf(m.a.stderr, "Attached to pid %d (%s)%s: %d markers into %s\n", r.ag.PID, clean(r.program), in, len(s.Hello.Matched), into)
	c := newCapture(s, trace)
	o.parallel(c)
	o.track(c)
	m.setCapture(r, c)
	runErr := c.run()
	if trace != nil {
		if cerr := trace.close(); runErr == nil {
			runErr = cerr
		}
	}
	m.finishOTLP(o)
	r.err = runErr
	why := "stream cut"
	if r.c.end != nil {
		why = r.c.end.Reason
	}
	if why != wire.EndStopped {
		held := fmt.Sprintf("its trace holds %d events", r.c.events)
		if m.noOutput {
			held = fmt.Sprintf("its %d events went to the exporter", r.c.events)
		}
		fmt.Fprintf(m.a.stderr, "pid %d (%s) ended (%s): %s\n", r.ag.PID, clean(r.program), why, held)
	}
}

// allDone reports whether every recording started so far has ended.
func (m *multiRecorder) allDone() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.procs {
		if !r.done {
			return false
		}
	}
	return true
}

// stopAll asks every running recording to stop; no new one starts.
func (m *multiRecorder) stopAll() {
	m.mu.Lock()
	m.stopping = true
	var running []*procRec
	for _, r := range m.procs {
		if r.s != nil && !r.done {
			running = append(running, r)
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range running {
		wg.Go(func() { m.stop(r) })
	}
	wg.Wait()
}

func (m *multiRecorder) stop(r *procRec) {
	ctx, cancel := context.WithTimeout(context.Background(), m.a.timeout)
	defer cancel()
	if err := r.client.Stop(ctx, r.s.Hello.Recording); err != nil && wire.ProcessAlive(r.ag.PID) {
		fmt.Fprintf(m.a.stderr, "stopping pid %d: %v\n", r.ag.PID, err)
	}
}

// summary prints a row per process and the directory.
func (m *multiRecorder) summary(reason string) error {
	m.mu.Lock()
	procs := slices.Clone(m.procs)
	m.mu.Unlock()
	slices.SortFunc(procs, func(a, b *procRec) int { return a.ag.PID - b.ag.PID })
	var events, lost uint64
	t := newTable(m.a.stdout, "  PID", "PROGRAM", "EVENTS", "LOST", "END", "ATTACH", "TRACE")
	n := 0
	for _, r := range procs {
		if r.c == nil {
			continue
		}
		n++
		why := "stream cut"
		if r.c.end != nil {
			why = r.c.end.Reason
		}
		attach := "-"
		if r.late {
			attach = r.attach.Round(time.Millisecond).String()
		}
		events += r.c.events
		lost += r.c.lost()
		dir := "-"
		if r.dir != "" {
			dir = filepath.Base(r.dir)
		}
		t.row("  "+strconv.Itoa(r.ag.PID), clean(r.program), strconv.FormatUint(r.c.events, 10),
			strconv.FormatUint(r.c.lost(), 10), why, attach, dir)
	}
	fmt.Fprintf(m.a.stdout, "Recorded %d events from %d processes in %.1fs (%s).\n", events, n, time.Since(m.begun).Seconds(), reason)
	t.flush()
	if m.noOutput {
		fmt.Fprintln(m.a.stdout, "Traces: none (--no-output)")
	} else {
		fmt.Fprintf(m.a.stdout, "Traces: %s\n", m.out)
		fmt.Fprintf(m.a.stdout, "Open them as one timeline with: babeltrace2 %s   (or tracemark summary %s)\n", m.out, m.out)
	}
	if n == 0 {
		var errs []string
		for _, r := range procs {
			if r.err != nil {
				errs = append(errs, r.err.Error())
			}
		}
		if len(errs) > 0 {
			return errors.New("no process recorded: " + strings.Join(errs, "; "))
		}
		fmt.Fprintln(m.a.stderr, "warning: no instrumented process matched")
	}
	return nil
}
