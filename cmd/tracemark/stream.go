package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
)

func streamCmd(a *app) *cobra.Command {
	var (
		f       recFlags
		m       multiFlags
		asJSON  bool
		otlpURL string
	)
	cmd := &cobra.Command{
		Use:     "stream -p PID -e GLOB [--filter EXPR] [-e GLOB ...]",
		GroupID: "trace",
		Short:   "Print events of a process live, one line each",
		Long: `Print the events of the markers matching the globs as they happen, one line
per event like the kernel's trace_pipe: wall-clock time, marker, fields.
String values are quoted. Events arrive in batches (as the process's
sub-buffers fill, and at least every 100 ms); each batch is sorted by time.
Stop with Ctrl-C or --duration; lost events are reported at the end.

With --json, each event is one JSON object on a line instead, in the
schema of "tracemark convert --to jsonl" (ts_ns, time, rel_ns, stream,
cpu, event, provider, fields, truncated), for jq and scripts.`,
		Example: example(
			"tracemark stream -p 1234 -e 'http:*'",
			"tracemark stream -p myservice -e http:request_done --filter 'latency > 50ms'",
			"tracemark stream -p 1234 -e 'cache:*' --duration 10s | grep miss",
			"tracemark stream -p 1234 -e http:request_done --json | jq -c 'select(.fields.status >= 500)'"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request("tracemark stream", wire.DefaultStatsInterval)
			if err != nil {
				return err
			}
			otlpCfg, err := otlpConfig(a, otlpURL)
			if err != nil {
				return err
			}
			if sel, multi, err := m.selector(&f); err != nil || multi {
				if err != nil {
					return err
				}
				return runMulti(cmd.Context(), a, sel, req, "", &multiOpts{sink: &streamSink{out: bufio.NewWriter(a.stdout), asJSON: asJSON}, otlp: otlpCfg})
			}
			t, err := a.connect(cmd.Context(), f.pid)
			if err != nil {
				return err
			}
			return runStream(cmd.Context(), a, t, req, asJSON, otlpCfg)
		},
	}
	f.add(cmd)
	m.add(cmd)
	cmd.Long += `

Host-wide (--all, --name GLOB, -p repeated): every line names its
process after the time (pid, program), or with --json in its "pid" and
"procname" keys; processes that start later are attached within a
second.`
	cmd.Example += "\n" + example("sudo tracemark stream --all -e 'http:*'")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per event (the jsonl schema of tracemark convert)")
	otlpFlag(cmd, &otlpURL, "the events")
	return cmd
}

// line is a formatted event waiting for the end of its batch.
type line struct {
	ts   uint64
	text []byte
}

func runStream(ctx context.Context, a *app, t *target, req wire.RecordRequest, asJSON bool, otlpCfg *otlpTarget) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	signals := a.catchSignals(cancel)
	defer signals.release()
	s, err := recordChecked(ctx, t.client, req)
	if err != nil {
		return err
	}
	defer s.Close()
	signals.arm(t, s)
	if t.pid == 0 {
		t.pid = s.Hello.PID
	}
	exp, err := startOTLP(ctx, otlpCfg, t, s.Hello)
	if err != nil {
		return err
	}
	announce(a, "Streaming", s.Hello, req, "")
	out := bufio.NewWriter(a.stdout)
	cc := newClockConv(s.Hello.Clock)
	var batch []line
	c := newCapture(s, nil)
	c.onRecord = func(r *wire.Record) error {
		batch = append(batch, line{ts: r.TS, text: formatRecord(nil, cc, r)})
		return nil
	}
	if asJSON {
		js := newJSONLines(cc)
		c.onRecord = func(r *wire.Record) error {
			text, err := js.format(r, c.stream)
			batch = append(batch, line{ts: r.TS, text: text})
			return err
		}
	}
	c.onRecord = exp.hook(c.onRecord)
	if exp != nil {
		exp.warn = func(line string) { fmt.Fprintln(a.stderr, line) }
	}
	exp.track(c)
	c.onSync = func() error {
		// Stable: events of one stream with equal timestamps keep
		// their order.
		slices.SortStableFunc(batch, func(x, y line) int { return cmp.Compare(x.ts, y.ts) })
		for _, l := range batch {
			out.Write(l.text)
		}
		batch = batch[:0]
		return out.Flush()
	}
	runErr := c.run()
	signals.release()
	_ = c.onSync()
	fmt.Fprintf(a.stderr, "%d events, %d lost\n", c.events, c.lost())
	if err := exp.finish(a.stderr, a.timeout); err != nil && runErr == nil {
		runErr = err
	}
	return a.outcome(c, t, runErr, "the events received until then were printed")
}
