package main

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/wire"
)

func statsCmd(a *app) *cobra.Command {
	var (
		f        recFlags
		by, hist string
		interval time.Duration
		asJSON   bool
		otlpURL  string
	)
	cmd := &cobra.Command{
		Use:     "stats -p PID -e GLOB [--by FIELD] [--hist FIELD]",
		GroupID: "trace",
		Short:   "Count events live, per key, with histograms",
		Long: `Count the events of the markers matching the globs, live: per marker, or
per value of a field with --by, and with --hist a log2 histogram of a
numeric field (durations are shown as durations), like bpftrace's
count() and hist() maps. On a terminal the table is redrawn in place
every --interval; when the recording ends (Ctrl-C or --duration) the
final table is printed, or with --json a JSON document.

Counting happens in tracemark, not in the process: the process records
the events as for "tracemark record", and lost events are reported.`,
		Example: example(
			"tracemark stats -p 1234 -e http:request_done --by status",
			"tracemark stats -p myservice -e http:request_done --by path --hist latency --duration 30s",
			"tracemark stats -p 1234 -e 'cache:*'                  # hits and misses",
			"tracemark stats -p 1234 -e 'storage:*' --by op --json --duration 10s"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request("tracemark stats", interval)
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
			if err := checkFields(cmd.Context(), a, t, f.globs, by, hist); err != nil {
				return err
			}
			return runStats(cmd.Context(), a, t, req, newAggregator(by, hist), asJSON, otlpCfg)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&by, "by", "", "count per value of this field")
	cmd.Flags().StringVar(&hist, "hist", "", "log2 histogram of this numeric field")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "refresh interval of the live table")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the final result as JSON")
	otlpFlag(cmd, &otlpURL)
	return cmd
}

// checkFields makes sure that some marker matched by the globs has the
// --by field and a numeric --hist field, so that a typo is a usage error
// now rather than an empty table later.
func checkFields(ctx context.Context, a *app, t *target, globs []string, by, hist string) error {
	if by == "" && hist == "" {
		return nil
	}
	ctx, cancel := a.requestCtx(ctx)
	defer cancel()
	ms, err := t.client.Markers(ctx, "")
	if err != nil {
		return err
	}
	hasBy, hasHist, matched := by == "", hist == "", 0
	for _, m := range ms {
		if !matchesAny(globs, m.Name) {
			continue
		}
		matched++
		for _, f := range m.Fields {
			hasBy = hasBy || f.Name == by
			hasHist = hasHist || f.Name == hist && numericKind(f.Kind)
		}
	}
	switch {
	case matched == 0:
		return nil // markers may be defined later; nothing to check yet
	case !hasBy:
		return usagef("--by %s: no marker matched by the -e globs has a field named %q (tracemark list shows the fields)", by, by)
	case !hasHist:
		return usagef("--hist %s: no marker matched by the -e globs has a numeric field named %q", hist, hist)
	}
	return nil
}

func matchesAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

func numericKind(k string) bool {
	switch k {
	case "string", "bytes", "bool":
		return false
	}
	return true
}

func runStats(ctx context.Context, a *app, t *target, req wire.RecordRequest, g *aggregator, asJSON bool, otlpCfg *otlp.Config) error {
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
	var om *otlpMetrics
	if o, err := startOTLP(ctx, otlpCfg, t, s.Hello); err != nil {
		return err
	} else if o != nil {
		om = &otlpMetrics{o: o}
	}
	announce(a, "Counting", s.Hello, req, "")
	view := newLiveView(a.stdout, isTerminal(a.stdout) && !asJSON)
	c := newCapture(s, nil)
	c.onRecord = g.add
	c.onStats = func() {
		var buf bytes.Buffer
		g.render(&buf, fmt.Sprintf("%s: %d events, %d lost", time.Since(c.started).Round(time.Second), g.total, c.lost()))
		view.show(buf.String())
		if om != nil {
			om.update(g.metrics(c.started, time.Now(), c.lost()))
		}
	}
	runErr := c.run()
	signals.release()
	view.erase()
	if asJSON {
		if err := writeJSON(a.stdout, g.result(c.lost())); err != nil {
			return err
		}
	} else {
		g.render(a.stdout, fmt.Sprintf("%d events in %.1fs, %d lost", g.total, time.Since(c.started).Seconds(), c.lost()))
	}
	if om != nil {
		if err := om.finish(a.stderr, g.metrics(c.started, time.Now(), c.lost()), a.timeout); err != nil && runErr == nil {
			runErr = err
		}
	}
	return a.outcome(c, t, runErr, "the counts above cover the events received until then")
}
