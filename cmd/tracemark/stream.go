package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/wire"
)

func streamCmd(a *app) *cobra.Command {
	var (
		f       recFlags
		otlpURL string
	)
	cmd := &cobra.Command{
		Use:     "stream -p PID -e GLOB [-e GLOB ...] [--filter EXPR]",
		GroupID: "trace",
		Short:   "Print events of a process live, one line each",
		Long: `Print the events of the markers matching the globs as they happen, one line
per event like the kernel's trace_pipe: wall-clock time, marker, fields.
String values are quoted. Events arrive in batches (every 100 ms); each
batch is sorted by time. Stop with Ctrl-C or --duration; lost events are
reported at the end.`,
		Example: example(
			"tracemark stream -p 1234 -e 'http:*'",
			"tracemark stream -p myservice -e http:request_done --filter 'latency > duration(\"50ms\")'",
			"tracemark stream -p 1234 -e 'cache:*' --duration 10s | grep miss"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request("tracemark stream", wire.DefaultStatsInterval)
			if err != nil {
				return err
			}
			otlpCfg, err := otlpConfig(otlpURL)
			if err != nil {
				return err
			}
			t, err := a.connect(cmd.Context(), f.pid)
			if err != nil {
				return err
			}
			return runStream(cmd.Context(), a, t, req, otlpCfg)
		},
	}
	f.add(cmd)
	otlpFlag(cmd, &otlpURL)
	return cmd
}

// line is a formatted event waiting for the end of its batch.
type line struct {
	ts   uint64
	text []byte
}

func runStream(ctx context.Context, a *app, t *target, req wire.RecordRequest, otlpCfg *otlp.Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	signals := a.catchSignals(cancel)
	defer signals.release()
	s, err := t.client.Record(ctx, req)
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
	c.onRecord = exp.hook(c.onRecord)
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
