package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/session"
)

func recordCmd(a *app) *cobra.Command {
	var (
		f                   recFlags
		m                   multiFlags
		out, mode, progress string
		otlpURL             string
		interval            time.Duration
		goTrace, noOutput   bool
	)
	cmd := &cobra.Command{
		Use:     "record -p PID -e GLOB [--filter EXPR] [-e GLOB ...] [-o DIR]",
		GroupID: "trace",
		Short:   "Record markers of a process into a CTF trace",
		Long: `Record the markers matching the globs into a CTF 1.8 trace directory,
readable by Babeltrace 2 and Trace Compass, until Ctrl-C or --duration.

On a terminal a progress line shows events per second, bytes and lost
events. Ctrl-C (or SIGTERM) stops cleanly: the process hands over every
event it recorded and the trace is finalised; a second Ctrl-C gives up
waiting. A summary follows: events and lost events per marker.

The trace is written as events arrive, a stats interval behind at most
(more while the disk is behind: the progress line then says how much is
not yet on disk), so it is valid up to its last packet even if the traced
process dies (exit code 3) or tracemark is killed. Lost events (a full buffer in discard mode) are counted in the
trace itself, where Babeltrace reports them.

With --otlp the events are exported to an OpenTelemetry collector as
well; --no-output writes no trace, for export only (at rates the disk,
or the page cache, would not keep up with), of one process or host-wide.

--mode overwrite keeps only the newest events: the process sends them when
the recording ends (a flight recording of the last --buffer per CPU).

--context adds fields to every event, in its CTF stream event context,
as lttng add-context does: pid, procname and cpu cost the process nothing
(tracemark adds them); vtid and tid, the thread that fired the event as
the process and as the host see it, are recorded by the process (a couple
of nanoseconds an event).

--go-trace also captures Go's execution trace of the same window into
DIR.go.trace, beside the trace directory (go tool trace DIR.go.trace); the
recorded markers' events appear in it as log events on the goroutines
that fired them. A process runs one Go trace at a time.`,
		Example: example(
			"tracemark record -p 1234 -e 'http:*' --duration 30s",
			"tracemark record -p myservice -e http:request_done --filter 'status >= 500' -o errors-trace",
			"tracemark record -p 1234 -e 'http:*' --filter 'status >= 500' -e 'storage:error'   # a filter per -e",
			"tracemark record -p 1234 -e 'db:*' --mode overwrite --buffer 8M   # Ctrl-C when it happens",
			"tracemark record -p 1234 -e 'http:*' --context tid,procname   # the thread of each event",
			"tracemark record -p 1234 -e 'http:*' --duration 5s --go-trace -o t && go tool trace t.go.trace",
			"babeltrace2 errors-trace"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request("tracemark record", interval)
			if err != nil {
				return err
			}
			if _, err := session.ParseMode(mode); err != nil {
				return usagef("--mode: %v", err)
			}
			req.Mode = mode
			req.GoTrace = goTrace
			view, plain, err := progressMode(a, progress)
			if err != nil {
				return err
			}
			ctxNames, err := parseContext(m.context)
			if err != nil {
				return err
			}
			req.Context = ctxNames
			if err := checkNoOutput(noOutput, otlpURL, out, goTrace, m.context); err != nil {
				return err
			}
			if sel, multi, err := m.selector(&f); err != nil || multi {
				if err != nil {
					return err
				}
				otlpCfg, err := otlpConfig(a, otlpURL)
				if err != nil {
					return err
				}
				return runMulti(cmd.Context(), a, sel, req, out, &multiOpts{context: ctxNames, otlp: otlpCfg, noOutput: noOutput})
			}
			if out != "" {
				if err := checkTraceDir(out); err != nil {
					return err
				}
			}
			otlpCfg, err := otlpConfig(a, otlpURL)
			if err != nil {
				return err
			}
			t, err := a.connect(cmd.Context(), f.pid)
			if err != nil {
				return err
			}
			r := &recorder{a: a, t: t, out: out, noOutput: noOutput, view: view, plain: plain, context: ctxNames, otlpCfg: otlpCfg}
			return r.run(cmd.Context(), req)
		},
	}
	f.add(cmd)
	m.addToRecord(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "trace directory (default tracemark-PROGRAM-PID-TIME)")
	cmd.Flags().BoolVar(&goTrace, "go-trace", false, "also capture Go's execution trace of the window into DIR.go.trace")
	cmd.Flags().BoolVar(&noOutput, "no-output", false, "with --otlp: write no trace, export only (as lttng create --no-output keeps nothing local)")
	cmd.Flags().StringVar(&mode, "mode", "discard", "discard (keep the oldest when the buffer is full) or overwrite (keep the newest)")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress display: auto (a live line on a terminal, else none), live, plain (a line per interval) or none")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "progress refresh interval")
	otlpFlag(cmd, &otlpURL, "the events")
	return cmd
}

// progressMode interprets --progress.
func progressMode(a *app, p string) (view *liveView, plain bool, err error) {
	switch p {
	case "auto":
		return newLiveView(a.stderr, isTerminal(a.stderr)), false, nil
	case "live":
		return newLiveView(a.stderr, true), false, nil
	case "plain":
		return newLiveView(a.stderr, false), true, nil
	case "none":
		return newLiveView(a.stderr, false), false, nil
	}
	return nil, false, usagef("--progress %q: want auto, live, plain or none", p)
}

// checkNoOutput refuses --no-output where it cannot apply.
func checkNoOutput(noOutput bool, otlpURL, out string, goTrace bool, context []string) error {
	switch {
	case !noOutput:
		return nil
	case otlpURL == "":
		return usagef("--no-output needs --otlp: without a trace or a collector the events would go nowhere")
	case out != "":
		return usagef("--no-output and -o %s: choose one", out)
	case goTrace:
		return usagef("--no-output and --go-trace: the Go trace is written beside the trace directory; give -o instead")
	case len(context) > 0:
		return usagef("--no-output and --context: context fields go into the trace only, not to the collector")
	}
	return nil
}

// recorder runs one recording into a trace, or with noOutput only to
// the collector.
type recorder struct {
	a        *app
	t        *target
	out      string
	noOutput bool // --no-output: no trace, r.out stays empty
	view     *liveView
	plain    bool
	// extra, if set, sees every record too (the demo's statistics).
	extra func(*wire.Record) error
	// noHints leaves out how to open the trace (the demo says more).
	noHints bool
	// context names the fields of --context.
	context []string
	// otlpCfg, if set, exports the events too (--otlp).
	otlpCfg *otlpTarget
	otlp    *otlpOut

	c          *capture
	lastEvents uint64
	lastTime   time.Time
}

func (r *recorder) run(ctx context.Context, req wire.RecordRequest) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	signals := r.a.catchSignals(cancel)
	defer signals.release()
	s, err := recordChecked(ctx, r.t.client, req)
	if err != nil {
		return err
	}
	defer s.Close()
	signals.arm(r.t, s)
	if r.t.pid == 0 {
		r.t.pid = s.Hello.PID
	}
	var trace *traceOut
	if !r.noOutput {
		if r.out == "" {
			r.out = defaultTraceDir("tracemark", s.Hello)
		}
		trace, err = createTraceCtx(r.out, s.Hello, newEventContext(r.context, s.Hello).inNamespace(r.t.pid, s.Hello.PID))
		if err != nil {
			return err
		}
	}
	// The Go trace's file before the exporter, whose goroutines an
	// error here would leave running.
	var goTrace *os.File
	if req.GoTrace {
		if !s.Hello.GoTrace {
			fmt.Fprintln(r.a.stderr, "warning: the process's agent does not capture Go execution traces (it predates --go-trace)")
		} else if goTrace, err = os.Create(r.out + ".go.trace"); err != nil {
			if trace != nil {
				trace.close()
			}
			return fmt.Errorf("go trace: %w", err)
		} else {
			defer goTrace.Close()
		}
	}
	if r.otlp, err = startOTLP(ctx, r.otlpCfg, r.t, s.Hello); err != nil {
		if trace != nil {
			trace.close()
		}
		return err
	}
	announce(r.a, "Recording", s.Hello, req, r.out)
	r.c = newCapture(s, trace)
	if goTrace != nil {
		r.c.goTrace = goTrace // not a nil *os.File in the interface
	}
	r.c.onStats = r.progress
	if r.otlp != nil {
		r.otlp.warn = func(line string) {
			r.view.erase() // redrawn by the progress that follows
			fmt.Fprintln(r.a.stderr, line)
		}
	}
	r.otlp.track(r.c)
	if r.extra == nil && r.otlp != nil {
		r.otlp.parallel(r.c) // nothing else needs each record
	} else {
		r.c.onRecord = r.otlp.hook(r.extra)
		r.c.packetsOnly = r.c.onRecord == nil
	}
	r.lastTime = r.c.started
	runErr := r.c.run()
	signals.release()
	r.view.erase()
	var closeErr error
	if trace != nil {
		closeErr = trace.close()
	}
	if goTrace != nil {
		if err := goTrace.Close(); err != nil && closeErr == nil {
			closeErr = fmt.Errorf("go trace: %w", err)
		}
	}
	r.summary(s.Hello)
	if err := r.otlp.finish(r.a.stdout, r.a.timeout); err != nil && closeErr == nil {
		closeErr = err
	}
	if closeErr != nil && runErr == nil {
		runErr = closeErr
	}
	kept := fmt.Sprintf("the trace holds the %d events received until then: %s", r.c.events, r.out)
	if r.noOutput {
		kept = fmt.Sprintf("no trace (--no-output): the %d events received until then were handed to the exporter, whose OTLP line says how many it sent", r.c.events)
	}
	return r.a.outcome(r.c, r.t, runErr, kept)
}

// defaultTraceDir names a new trace directory after the process and the
// time: tracemark-demo-1234-20260102-150405.
func defaultTraceDir(prefix string, h wire.Hello) string {
	return fmt.Sprintf("%s-%s-%d-%s", prefix, fileSafe(h.Program), h.PID, time.Now().Format("20060102-150405"))
}

// fileSafe makes a program name fit in a file name: letters, digits, '-',
// '_' and '.' stay, anything else (a '/', a space, a control character)
// becomes '_'.
func fileSafe(program string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, program)
}

// announce tells the user what is being recorded, on stderr.
func announce(a *app, verb string, h wire.Hello, req wire.RecordRequest, out string) {
	until := "Ctrl-C to stop"
	if req.Duration != "" {
		until = "for " + req.Duration + ", Ctrl-C to stop early"
	}
	where := ""
	if out != "" {
		where = " into " + out
	}
	fmt.Fprintf(a.stderr, "%s %s of pid %d (%s)%s; %s\n", verb, count(len(h.Matched), "marker"), h.PID, clean(h.Program), where, until)
	warnLeftOut(a.stderr, h.Rules)
	if len(h.Matched) == 0 {
		globs := make([]string, len(req.Rules))
		for i, r := range req.Rules {
			globs[i] = r.Pattern
		}
		fmt.Fprintf(a.stderr, "warning: no marker matches %s yet; markers defined later that match will be recorded\n", strings.Join(globs, ", "))
	}
}

// progress shows the progress line, after each stats frame.
func (r *recorder) progress() {
	now := time.Now()
	rate := float64(r.c.events-r.lastEvents) / max(now.Sub(r.lastTime).Seconds(), 1e-3)
	r.lastEvents, r.lastTime = r.c.events, now
	lost := r.c.received()
	line := fmt.Sprintf("%6.1fs  %d events  %s/s  %s  lost %d (%s)%s%s\n",
		now.Sub(r.c.started).Seconds(), r.c.events, humanRate(rate), humanBytes(r.c.bytes), lost, percent(lost, r.c.events+lost), r.c.trace.behind(), r.otlp.progress())
	if r.plain {
		fmt.Fprint(r.a.stderr, line)
		return
	}
	r.view.show(line)
}

// summary prints what was recorded, per marker, on stdout.
func (r *recorder) summary(h wire.Hello) {
	c, w := r.c, r.a.stdout
	why := "stream cut"
	if c.end != nil {
		why = endReason(c.end.Reason)
	}
	elapsed := time.Since(c.started)
	fmt.Fprintf(w, "Recorded %d events (%s) from pid %d (%s) in %.1fs (%s): %s events/s sustained, %s lost.\n",
		c.events, humanBytes(c.bytes), h.PID, clean(h.Program), elapsed.Seconds(), why,
		humanRate(float64(c.events)/max(elapsed.Seconds(), 1e-3)), percent(c.lost(), c.events+c.lost()))
	printMarkerCounts(r.a, c)
	if lost := c.lost(); lost > 0 && h.Mode != "overwrite" {
		fmt.Fprint(w, lossAdvice(h, c.events, lost, c.bytes, elapsed))
	}
	if r.noOutput {
		fmt.Fprintln(w, "Trace: none (--no-output): the events were only exported (the OTLP line says how many)")
		return
	}
	fmt.Fprintf(w, "Trace: %s\n", r.out)
	if r.noHints {
		return
	}
	fmt.Fprintf(w, "Open it with: babeltrace2 %s   (or Trace Compass: File > Open Trace, pick %s)\n", r.out, filepath.Join(r.out, "metadata"))
}

// humanRate formats an event rate: 950, 12.3k, 9.04M.
func humanRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

// percent formats part/whole as a percentage, "0 %" when whole is 0.
func percent(part, whole uint64) string {
	if whole == 0 || part == 0 {
		return "0 %"
	}
	p := 100 * float64(part) / float64(whole)
	if p < 0.01 {
		return "<0.01 %"
	}
	return fmt.Sprintf("%.2f %%", p)
}

// lossAdvice says, with numbers, which knobs would have kept the lost
// events: how long the buffer holds events at the rate they came, a
// buffer and a sub-buffer size that would hold longer, and a filter.
func lossAdvice(h wire.Hello, events, lost, bytes uint64, elapsed time.Duration) string {
	secs := max(elapsed.Seconds(), 1e-3)
	fired := float64(events+lost) / secs
	perEvent := 32.0 // bytes, if nothing was received to measure
	if events > 0 {
		perEvent = float64(bytes) / float64(events)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  The process fired %s events/s (%s/s) and the recording kept %s/s.\n",
		humanRate(fired), humanBytes(uint64(fired*perEvent)), humanRate(float64(events)/secs))
	if h.Buffer == 0 {
		fmt.Fprintln(&b, "  Try a larger --buffer, a larger --subbuf, or a --filter that keeps fewer events.")
		return b.String()
	}
	holds := func(size int) string {
		return fmt.Sprintf("%.1f ms", float64(size)/(fired*perEvent)*1e3)
	}
	fmt.Fprintf(&b, "  The buffer, %s per CPU in sub-buffers of %s, holds %s of events at that rate on one CPU:\n",
		humanBytes(uint64(h.Buffer)), humanBytes(uint64(h.SubBuffer)), holds(h.Buffer))
	fmt.Fprintln(&b, "  the reader (process, socket, tracemark, disk) fell further behind than that.")
	var try []string
	if bigger := min(h.Buffer*8, wire.MaxBuffer); bigger > h.Buffer {
		try = append(try, fmt.Sprintf("--buffer %s (holds %s)", sizeFlag(bigger), holds(bigger)))
	}
	if sub := min(h.SubBuffer*4, wire.MaxSubBuffer); sub > h.SubBuffer && h.SubBuffer < 1<<20 {
		try = append(try, fmt.Sprintf("--subbuf %s (fewer, larger packets: fewer wake-ups and writes)", sizeFlag(sub)))
	}
	try = append(try, "or a --filter that keeps fewer events")
	fmt.Fprintf(&b, "  Try %s.\n", strings.Join(try, ", "))
	if float64(events)/secs < fired/2 {
		fmt.Fprintln(&b, "  The events came faster than the recording sustains: a larger buffer only absorbs bursts.")
	}
	return b.String()
}

// sizeFlag formats a power-of-two size for a flag: 256K, 32M.
func sizeFlag(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%dM", n>>20)
	}
	return fmt.Sprintf("%dK", n>>10)
}

// printMarkerCounts prints the per-marker table of a capture.
func printMarkerCounts(a *app, c *capture) {
	names := c.markers()
	if len(names) > 0 {
		t := newTable(a.stdout, "  MARKER", "EVENTS", "LOST", "FILTERED")
		for _, name := range names {
			lost, filtered := "?", "?"
			if ms, ok := c.markerStats(name); ok {
				lost, filtered = strconv.FormatUint(ms.Discarded, 10), strconv.FormatUint(ms.Filtered, 10)
			}
			t.row("  "+name, strconv.FormatUint(c.count(name), 10), lost, filtered)
		}
		t.flush()
	}
	switch lost := c.lost(); {
	case lost > 0 && c.s.Hello.Mode == "overwrite":
		fmt.Fprintf(a.stdout, "Overwritten events: %d (overwrite mode keeps the newest that fit in the buffer)\n", lost)
	case lost > 0:
		fmt.Fprintf(a.stdout, "Lost events: %d (the buffer was full)\n", lost)
	default:
		fmt.Fprintln(a.stdout, "Lost events: none")
	}
}
