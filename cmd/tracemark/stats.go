package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format"
	"github.com/tracemark/tracemark/internal/wire"
)

func statsCmd(a *app) *cobra.Command {
	var (
		f                  recFlags
		m                  multiFlags
		by                 onceString
		hist, lhist, value onceString
		top                int
		interval, every    time.Duration
		asJSON             bool
		otlpURL            string
	)
	cmd := &cobra.Command{
		Use:     "stats {-p PID -e GLOB [--filter EXPR] | TRACE_DIR} [--by FIELD,...] [--hist FIELD | --lhist F:MIN:MAX:STEP] [--value FIELD]",
		GroupID: "trace",
		Short:   "Count events live or in a trace, per key, with histograms",
		Long: `Count the events of the markers matching the globs, live: per marker, or
per value of one or more fields with --by (comma-separated), like
bpftrace's count() maps. --hist adds a log2 histogram of a numeric field
(durations are shown as durations), --lhist a linear one (bpftrace's
lhist: FIELD:MIN:MAX:STEP, integers or durations), and --value the sum,
average, minimum and maximum of a numeric field per row. --top N keeps
the N biggest rows.

On a terminal the table is redrawn in place every --interval; when the
recording ends (Ctrl-C or --duration) the final table is printed, or with
--json a JSON document. With --every the table is printed and cleared at
each interval instead, one table per interval (bpftrace's
interval + print + clear).

Given a trace directory instead of -p, the same counts are made from the
recorded events (-e globs are optional there; --filter is not available,
and durations are shown in nanoseconds: the trace does not say which
integer fields are durations). A directory of traces, as record --all
writes one per process, is counted as one, with pid and program fields
for --by (the default --by pid), as with --all.

Counting happens in tracemark, not in the process: the process records
the events as for "tracemark record", and lost events are reported.`,
		Example: example(
			"tracemark stats -p 1234 -e http:request_done --by status",
			"tracemark stats -p myservice -e http:request_done --by method,status --value latency --top 10",
			"tracemark stats -p myservice -e http:request_done --lhist latency:0:100ms:10ms --duration 30s",
			"tracemark stats -p 1234 -e 'cache:*' --every 5s            # hits and misses per 5 s",
			"tracemark stats ./trace -e http:request_done --by status --hist latency",
			"tracemark stats -p 1234 -e 'storage:*' --by op --json --duration 10s"),
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			spec := aggSpec{hist: hist.v, value: value.v, top: top}
			if by.v != "" {
				spec.by = strings.Split(by.v, ",")
				for _, b := range spec.by {
					if b == "" {
						return usagef("--by %s: an empty field name", by.v)
					}
				}
			}
			if lhist.v != "" {
				if hist.v != "" {
					return usagef("--hist and --lhist: choose one histogram")
				}
				var err error
				if spec.lhist, err = parseLinSpec(lhist.v); err != nil {
					return err
				}
			}
			if top < 0 {
				return usagef("--top %d: want a positive number of rows", top)
			}
			if every < 0 || every > 0 && every < wire.MinInterval {
				return usagef("--every %v: want at least %v", every, wire.MinInterval)
			}
			if len(argv) == 1 {
				if f.pid != "" || a.socket != "" {
					return usagef("stats TRACE_DIR counts a recorded trace: it takes no -p")
				}
				return statsOfTrace(a, argv[0], f.rules.rules, spec, asJSON)
			}
			if every > 0 {
				interval = every
			}
			req, err := f.request("tracemark stats", interval)
			if err != nil {
				return err
			}
			otlpCfg, err := otlpConfig(a, otlpURL)
			if err != nil {
				return err
			}
			if otlpCfg != nil && (spec.lhist != nil || spec.value != "") {
				fmt.Fprintln(a.stderr, "warning: --otlp exports the counts and --hist's histogram only: --lhist and --value stay on this terminal")
			}
			if sel, multi, err := m.selector(&f); err != nil || multi {
				if err != nil {
					return err
				}
				if len(spec.by) == 0 {
					spec.by = []string{fieldPID} // a row per process and marker
				}
				sink := &statsSink{g: newAggregator(spec), asJSON: asJSON, every: interval,
					view: newLiveView(a.stdout, isTerminal(a.stdout) && !asJSON), start: time.Now()}
				return runMulti(cmd.Context(), a, sel, req, "", &multiOpts{sink: sink, otlp: otlpCfg})
			}
			t, err := a.connect(cmd.Context(), f.pid)
			if err != nil {
				return err
			}
			if err := checkFields(cmd.Context(), a, t, f.rules.globs(), spec); err != nil {
				return err
			}
			return runStats(cmd.Context(), a, t, req, newAggregator(spec), asJSON, every > 0, otlpCfg)
		},
	}
	f.add(cmd)
	m.add(cmd)
	cmd.Long += `

Host-wide (--all, --name GLOB, -p repeated): the processes are counted
together, every event having two more fields, pid and program, for --by;
the default is --by pid, a row per process and marker. With --otlp each
process's counts go out under its own resource (process.pid,
process.executable.name, service.name, as record --all --otlp sends its
events): pid and program are the resource, the other --by fields the
points' attributes.`
	cmd.Example += "\n" + example("sudo tracemark stats --all -e 'http:*' --by program")
	cmd.Flags().Var(&by, "by", "count per value of these fields, comma-separated: --by method,status (host-wide also pid or program)")
	cmd.Flags().Var(&hist, "hist", "log2 histogram of this numeric field")
	cmd.Flags().Var(&lhist, "lhist", "linear histogram FIELD:MIN:MAX:STEP, such as latency:0:100ms:10ms")
	cmd.Flags().Var(&value, "value", "sum, average, minimum and maximum of this numeric field, per row")
	cmd.Flags().IntVar(&top, "top", 0, "show only the N rows with the biggest counts (0: all)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "refresh interval of the live table")
	cmd.Flags().DurationVar(&every, "every", 0, "print the table and clear the counts at this interval, instead of a live table")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the final result as JSON (with --every, one JSON document per interval)")
	otlpFlag(cmd, &otlpURL, "the counts (per --by key, and --hist) as metrics")
	return cmd
}

// onceString is a string flag that may be given once: a repeated --by or
// -p would otherwise silently keep only the last.
type onceString struct {
	v   string
	set bool
}

func (o *onceString) Set(s string) error {
	if o.set && s != o.v { // the same twice is not ambiguous (and cobra's completion parses twice)
		return fmt.Errorf("given twice (%q, then %q): give it once", o.v, s)
	}
	o.v, o.set = s, true
	return nil
}
func (o *onceString) Type() string   { return "string" }
func (o *onceString) String() string { return o.v }

// checkFields makes sure that some marker matched by the globs has each
// --by field and the numeric fields of --hist, --lhist and --value, so
// that a typo is a usage error now, with the closest field name, rather
// than an empty table later.
func checkFields(ctx context.Context, a *app, t *target, globs []string, spec aggSpec) error {
	if len(spec.by) == 0 && spec.hist == "" && spec.lhist == nil && spec.value == "" {
		return nil
	}
	ctx, cancel := a.requestCtx(ctx)
	defer cancel()
	ms, err := t.client.Markers(ctx, "")
	if err != nil {
		return err
	}
	var fields []wire.Field
	for _, m := range ms {
		if matchesAny(globs, m.Name) {
			fields = append(fields, m.Fields...)
		}
	}
	return checkFieldList(fields, spec)
}

// checkFieldList checks the spec's fields against those of the matched
// markers (none: markers may be defined later, nothing to check yet).
func checkFieldList(fields []wire.Field, spec aggSpec) error {
	if len(fields) == 0 {
		return nil
	}
	has := func(name string, numeric bool) bool {
		return slices.ContainsFunc(fields, func(f wire.Field) bool { return f.Name == name && (!numeric || numericKind(f.Kind)) })
	}
	missing := func(flag, name string, numeric bool) error {
		if has(name, numeric) {
			return nil
		}
		what := "a field"
		if numeric {
			what = "a numeric field"
		}
		var names []string
		for _, f := range fields {
			if !numeric || numericKind(f.Kind) {
				names = append(names, f.Name)
			}
		}
		hint := ""
		if c := closest(name, names); c != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", c)
		}
		return usagef("%s %s: no marker matched by the -e globs has %s named %q%s (tracemark list shows the fields)", flag, name, what, name, hint)
	}
	for _, b := range spec.by {
		if err := missing("--by", b, false); err != nil {
			return err
		}
	}
	if spec.hist != "" {
		if err := missing("--hist", spec.hist, true); err != nil {
			return err
		}
	}
	if spec.lhist != nil {
		if err := missing("--lhist", spec.lhist.field, true); err != nil {
			return err
		}
	}
	if spec.value != "" {
		return missing("--value", spec.value, true)
	}
	return nil
}

// closest returns the name nearest to s by edit distance, if it is near
// enough to be a typo of it.
func closest(s string, names []string) string {
	best, bestD := "", max(2, len(s)/3)+1
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
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

func runStats(ctx context.Context, a *app, t *target, req wire.RecordRequest, g *aggregator, asJSON, perInterval bool, otlpCfg *otlpTarget) error {
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
	var om *otlpMetrics
	if o, err := startOTLP(ctx, otlpCfg, t, s.Hello); err != nil {
		return err
	} else if o != nil {
		om = &otlpMetrics{o: o}
	}
	announce(a, "Counting", s.Hello, req, "")
	view := newLiveView(a.stdout, isTerminal(a.stdout) && !asJSON && !perInterval)
	if om != nil {
		// On the capture's goroutine, as the table's drawing: the
		// table is redrawn below the line.
		om.o.warn = func(line string) {
			view.erase()
			fmt.Fprintln(a.stderr, line)
		}
	}
	c := newCapture(s, nil)
	c.onRecord = g.add
	// The metrics are cumulative: with --every, whose table is cleared
	// each interval, they are counted apart, from the start.
	og := g
	if om != nil && perInterval {
		og = newAggregator(g.aggSpec)
		c.onRecord = func(r *wire.Record) error {
			if err := g.add(r); err != nil {
				return err
			}
			return og.add(r)
		}
	}
	var lastLost uint64
	printInterval := func() {
		// bpftrace's interval: print(@); clear(@).
		lost := c.lost()
		if asJSON {
			_ = writeJSON(a.stdout, g.result(lost-lastLost))
		} else {
			g.render(a.stdout, fmt.Sprintf("%s: %s, %d lost", time.Now().Format(time.TimeOnly), count(int(g.total), "event"), lost-lastLost))
			fmt.Fprintln(a.stdout)
		}
		g.reset()
		lastLost = lost
	}
	c.onStats = func() {
		if om != nil {
			om.update(og.metrics(c.started, time.Now(), c.lost()))
		}
		if perInterval {
			printInterval()
			return
		}
		var buf bytes.Buffer
		g.render(&buf, fmt.Sprintf("%s: %d events, %d lost", time.Since(c.started).Round(time.Second), g.total, c.lost()))
		view.show(buf.String())
	}
	runErr := c.run()
	signals.release()
	view.erase()
	switch {
	case perInterval:
		if g.total > 0 { // the events since the last interval
			printInterval()
		}
	case asJSON:
		if err := writeJSON(a.stdout, g.result(c.lost())); err != nil {
			return err
		}
	default:
		g.render(a.stdout, fmt.Sprintf("%d events in %.1fs, %d lost", g.total, time.Since(c.started).Seconds(), c.lost()))
	}
	if om != nil {
		if err := om.finish(a.stderr, og.metrics(c.started, time.Now(), c.lost()), a.timeout); err != nil && runErr == nil {
			runErr = err
		}
	}
	return a.outcome(c, t, runErr, "the counts above cover the events received until then")
}

// statsOfTrace makes the counts of a recorded trace.
func statsOfTrace(a *app, dir string, rules []wire.Rule, spec aggSpec, asJSON bool) error {
	var globs []string
	for _, r := range rules {
		if r.Filter != "" {
			return usagef("stats TRACE_DIR: --filter is for live counts; the trace holds what was recorded")
		}
		globs = append(globs, r.Pattern)
	}
	if len(globs) == 0 {
		globs = []string{"*"}
	}
	for _, g := range globs {
		if err := checkGlob(g); err != nil {
			return err
		}
	}
	// A host-wide recording is a directory of traces, one per process:
	// the processes are counted together, every event having the pid and
	// program fields that stats --all gives them.
	dirs, err := format.TraceDirs(dir)
	if err != nil {
		return fmt.Errorf("reading trace: %w", err)
	}
	set := len(dirs) > 1 || filepath.Clean(dirs[0]) != filepath.Clean(dir)
	var rs []*ctf.Reader
	defer func() {
		for _, r := range rs {
			r.Close()
		}
	}()
	var fields []wire.Field
	if set {
		fields = append(fields, wire.Field{Name: fieldPID, Kind: "int64"}, wire.Field{Name: fieldProgram, Kind: "string"})
	}
	for _, d := range dirs {
		r, err := ctf.Open(d)
		if err != nil {
			return fmt.Errorf("reading trace %s: %w", d, err)
		}
		warnTrace(a, d, r)
		rs = append(rs, r)
		for _, ec := range r.Classes() {
			if matchesAny(globs, ec.Name) {
				for _, f := range ec.Fields {
					fields = append(fields, wire.Field{Name: f.Name, Kind: f.Type.String()})
				}
			}
		}
	}
	if err := checkFieldList(fields, spec); err != nil {
		return err
	}
	if set && len(spec.by) == 0 {
		spec.by = []string{fieldPID} // a row per process and marker, as stats --all
	}
	g := newAggregator(spec)
	var lost uint64
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for _, r := range rs {
		info := r.Info()
		pid, program := info.Env["host_pid"], info.Env["procname"]
		if pid == "" {
			pid = info.Env["vpid"]
		}
		pidValue, _ := strconv.ParseInt(pid, 10, 64)
		proc := &procRec{program: program}
		classes := map[*ctf.EventClass]*wire.EventClass{}
		for ev, err := range r.Events() {
			if err != nil {
				return fmt.Errorf("reading trace: %w", err)
			}
			if ev.Class == nil {
				lost += ev.Discarded
				continue
			}
			wc := classes[ev.Class]
			if wc == nil {
				if !matchesAny(globs, ev.Class.Name) {
					continue
				}
				c := wire.ClassFromCTF(*ev.Class, nil)
				wc = &c
				if set {
					wc = proc.extend(wc)
				}
				classes[ev.Class] = wc
			}
			first, last = min(first, ev.Time), max(last, ev.Time)
			rec := wire.Record{Class: wc, Fields: ev.Fields, Truncated: ev.Truncated}
			if set {
				rec.Fields = append(slices.Clip(ev.Fields), ctf.IntValue(pidValue), ctf.StringValue(program))
			}
			_ = g.add(&rec)
		}
	}
	if g.total == 0 {
		first, last = 0, 0
	}
	if asJSON {
		return writeJSON(a.stdout, g.result(lost))
	}
	g.render(a.stdout, fmt.Sprintf("%s in %.1fs of trace, %d lost", count(int(g.total), "event"), time.Duration(last-first).Seconds(), lost))
	return nil
}
