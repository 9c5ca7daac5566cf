package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/session"
)

func recordCmd(a *app) *cobra.Command {
	var (
		f                   recFlags
		out, mode, progress string
		otlpURL             string
		interval            time.Duration
	)
	cmd := &cobra.Command{
		Use:     "record -p PID -e GLOB [-e GLOB ...] [-o DIR]",
		GroupID: "trace",
		Short:   "Record markers of a process into a CTF trace",
		Long: `Record the markers matching the globs into a CTF 1.8 trace directory,
readable by Babeltrace 2 and Trace Compass, until Ctrl-C or --duration.

On a terminal a progress line shows events per second, bytes and lost
events. Ctrl-C (or SIGTERM) stops cleanly: the process hands over every
event it recorded and the trace is finalised; a second Ctrl-C gives up
waiting. A summary follows: events and lost events per marker.

The trace is written as events arrive, so it is valid up to its last
packet even if the traced process dies (exit code 3) or tracemark is
killed. Lost events (a full buffer in discard mode) are counted in the
trace itself, where Babeltrace reports them.

--mode overwrite keeps only the newest events: the process sends them when
the recording ends (a flight recording of the last --buffer per CPU).`,
		Example: example(
			"tracemark record -p 1234 -e 'http:*' --duration 30s",
			"tracemark record -p myservice -e http:request_done --filter 'status >= 500' -o errors-trace",
			"tracemark record -p 1234 -e 'db:*' --mode overwrite --buffer 8M   # Ctrl-C when it happens",
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
			view, plain, err := progressMode(a, progress)
			if err != nil {
				return err
			}
			if out != "" {
				if err := checkTraceDir(out); err != nil {
					return err
				}
			}
			otlpCfg, err := otlpConfig(otlpURL)
			if err != nil {
				return err
			}
			t, err := a.connect(cmd.Context(), f.pid)
			if err != nil {
				return err
			}
			r := &recorder{a: a, t: t, out: out, view: view, plain: plain, otlpCfg: otlpCfg}
			return r.run(cmd.Context(), req)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "trace directory (default tracemark-PROGRAM-PID-TIME)")
	cmd.Flags().StringVar(&mode, "mode", "discard", "discard (keep the oldest when the buffer is full) or overwrite (keep the newest)")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress display: auto (a live line on a terminal, else none), live, plain (a line per interval) or none")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "progress refresh interval")
	otlpFlag(cmd, &otlpURL)
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

// recorder runs one recording into a trace.
type recorder struct {
	a     *app
	t     *target
	out   string
	view  *liveView
	plain bool
	// extra, if set, sees every record too (the demo's statistics).
	extra func(*wire.Record) error
	// noHints leaves out how to open the trace (the demo says more).
	noHints bool
	// otlpCfg, if set, exports the events too (--otlp).
	otlpCfg *otlp.Config
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
	s, err := r.t.client.Record(ctx, req)
	if err != nil {
		return err
	}
	defer s.Close()
	signals.arm(r.t, s)
	if r.t.pid == 0 {
		r.t.pid = s.Hello.PID
	}
	if r.out == "" {
		r.out = defaultTraceDir("tracemark", s.Hello)
	}
	trace, err := createTrace(r.out, s.Hello)
	if err != nil {
		return err
	}
	if r.otlp, err = startOTLP(ctx, r.otlpCfg, r.t, s.Hello); err != nil {
		trace.close()
		return err
	}
	announce(r.a, "Recording", s.Hello, req, r.out)
	r.c = newCapture(s, trace)
	r.c.onStats = r.progress
	r.c.onRecord = r.otlp.hook(r.extra)
	r.lastTime = r.c.started
	runErr := r.c.run()
	signals.release()
	r.view.erase()
	closeErr := trace.close()
	r.summary(s.Hello)
	if err := r.otlp.finish(r.a.stdout, r.a.timeout); err != nil && closeErr == nil {
		closeErr = err
	}
	if closeErr != nil && runErr == nil {
		runErr = closeErr
	}
	return r.a.outcome(r.c, r.t, runErr, fmt.Sprintf("the trace holds the %d events received until then: %s", r.c.events, r.out))
}

// defaultTraceDir names a new trace directory after the process and the
// time: tracemark-demo-1234-20260102-150405.
func defaultTraceDir(prefix string, h wire.Hello) string {
	prog := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, h.Program)
	return fmt.Sprintf("%s-%s-%d-%s", prefix, prog, h.PID, time.Now().Format("20060102-150405"))
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
	fmt.Fprintf(a.stderr, "%s %d markers of pid %d (%s)%s; %s\n", verb, len(h.Matched), h.PID, clean(h.Program), where, until)
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
	line := fmt.Sprintf("%6.1fs  %d events  %.0f/s  %s  lost %d%s\n",
		now.Sub(r.c.started).Seconds(), r.c.events, rate, humanBytes(r.c.bytes), r.c.lost(), r.otlp.progress())
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
		why = c.end.Reason
	}
	fmt.Fprintf(w, "Recorded %d events (%s) from pid %d (%s) in %.1fs (%s).\n",
		c.events, humanBytes(c.bytes), h.PID, clean(h.Program), time.Since(c.started).Seconds(), why)
	printMarkerCounts(r.a, c)
	fmt.Fprintf(w, "Trace: %s\n", r.out)
	if r.noHints {
		return
	}
	fmt.Fprintf(w, "Open it with: babeltrace2 %s   (or Trace Compass: File > Open Trace, pick %s)\n", r.out, filepath.Join(r.out, "metadata"))
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
			t.row("  "+name, strconv.FormatUint(c.counts[name], 10), lost, filtered)
		}
		t.flush()
	}
	switch lost := c.lost(); {
	case lost > 0 && c.s.Hello.Mode == "overwrite":
		fmt.Fprintf(a.stdout, "Overwritten events: %d (overwrite mode keeps the newest that fit in the buffer)\n", lost)
	case lost > 0:
		fmt.Fprintf(a.stdout, "Lost events: %d (the buffer was full; try a larger --buffer or a --filter)\n", lost)
	default:
		fmt.Fprintln(a.stdout, "Lost events: none")
	}
}
