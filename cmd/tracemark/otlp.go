package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/ident"
	"github.com/tracemark/tracemark/internal/wire"
)

// otlpFlag adds --otlp to record, stream and stats, which export what
// they say: the events, or the counts as metrics.
func otlpFlag(cmd *cobra.Command, url *string, what string) {
	cmd.Flags().StringVar(url, "otlp", "", "also export "+what+" to an OpenTelemetry collector: its OTLP/HTTP base URL, such as http://localhost:4318 (the OTEL_EXPORTER_OTLP_*, OTEL_BLRP_* and OTEL_SERVICE_NAME variables apply)")
}

// otlpTarget is where and how the CLI exports: the collector's base URL
// and the exporter's options, the OTEL_EXPORTER_OTLP_* variables first.
type otlpTarget struct {
	Endpoint string
	opts     []otlp.Option
	// warnings are the settings of the environment the exporter ignores
	// (otlp.Exporter.Warnings), for the operator to see.
	warnings []string
}

// newExporter starts an exporter to t, with more options after t's.
func (t *otlpTarget) newExporter(more ...otlp.Option) (*otlp.Exporter, error) {
	return otlp.New(t.Endpoint, append(slices.Clip(t.opts), more...)...)
}

// check makes and closes an exporter to t: New checks the URL and the
// option values. It keeps the exporter's warnings in t.
func (t *otlpTarget) check() error {
	exp, err := t.newExporter()
	if err != nil {
		return err
	}
	t.warnings = exp.Warnings()
	return exp.Close(context.Background())
}

// otlpConfig checks --otlp and the OTEL_* variables before anything
// starts, and shows the settings of the environment that are ignored. An
// empty url means no export (nil target). The per-signal endpoint
// variables name other collectors: --otlp wins (as any endpoint given to
// otlp.New does).
func otlpConfig(a *app, url string) (*otlpTarget, error) {
	if url == "" {
		return nil, nil
	}
	if err := (&otlpTarget{opts: []otlp.Option{otlp.WithEnv()}}).check(); err != nil {
		return nil, usagef("--otlp: %v", err)
	}
	t := &otlpTarget{Endpoint: url, opts: []otlp.Option{otlp.WithEnv()}}
	if err := t.check(); err != nil { // checks the URL
		return nil, usagef("--otlp %q: %v", url, err)
	}
	for _, w := range t.warnings {
		warnf(a, "--otlp: %s", w)
	}
	return t, nil
}

// otlpOut exports the records of a capture (record --otlp, stream
// --otlp). Its methods do nothing on a nil *otlpOut.
type otlpOut struct {
	url     string
	prefix  string // of the lines finish prints: "" or "pid 12 (api): "
	exp     *otlp.Exporter
	cc      clockConv
	client  *client.Client
	classes map[*wire.EventClass]*otlp.Class
	scopes  map[string]otlp.Scope // marker name -> module
	spans   map[string]*otlp.SpanRule
	starts  map[string][]string // start marker -> pairing keys
	asked   map[string]bool     // marker names looked up
	told    map[string]bool     // markers whose class said its span (learn)
	// mu guards classes, scopes, spans, starts, asked and told against
	// concurrent classOf calls (the workers of parallel).
	mu sync.Mutex
	// lastEC and lastClass are the latest class looked up.
	lastEC    *wire.EventClass
	lastClass *otlp.Class

	// c, set by track, is the capture whose counts go out as metrics,
	// periodically by metrics.
	c       *capture
	metrics *otlpMetrics

	// warn, if set, shows the operator a warning line as it happens
	// (track calls it after a stats frame); warned keys the refusal
	// last shown (newRefusal).
	warn   func(line string)
	warned string
}

// startOTLP starts the exporter for the recording that h describes: the
// resource is the traced process.
func startOTLP(ctx context.Context, cfg *otlpTarget, t *target, h wire.Hello) (*otlpOut, error) {
	if cfg == nil {
		return nil, nil
	}
	return startOTLPFor(ctx, cfg, t.client, h, h.PID)
}

// startOTLPFor starts the exporter for a recording of one process through
// client: the resource is that process, with pid as its process.pid (the
// host pid, for host-wide recordings: a container's processes may share
// their vpids).
func startOTLPFor(ctx context.Context, cfg *otlpTarget, client *client.Client, h wire.Hello, pid int) (*otlpOut, error) {
	if cfg == nil {
		return nil, nil
	}
	res, err := otlp.ProcessResource(otlp.Process{PID: pid, Executable: h.Program, Host: h.Env["hostname"]})
	if err != nil {
		return nil, usagef("--otlp: %v", err)
	}
	exp, err := cfg.newExporter(otlp.WithResource(res...))
	if err != nil {
		return nil, err
	}
	o := newOTLPOut(cfg.Endpoint, exp, h.Clock)
	o.client = client
	o.lookup(ctx)
	return o, nil
}

// newOTLPOut returns an otlpOut exporting to url with exp the events of
// a stream whose clock is clock. It knows no marker yet (lookup, learn).
func newOTLPOut(url string, exp *otlp.Exporter, clock wire.Clock) *otlpOut {
	return &otlpOut{
		url: url, exp: exp, cc: newClockConv(clock),
		classes: map[*wire.EventClass]*otlp.Class{}, scopes: map[string]otlp.Scope{}, asked: map[string]bool{},
		told: map[string]bool{}, spans: map[string]*otlp.SpanRule{}, starts: map[string][]string{},
	}
}

// moduleScope is the instrumentation scope of the events of a marker of
// module m ("path@version", or a path): "tracemark" if m is empty, or not
// printable text (as a trace leaves it out).
func moduleScope(m string) otlp.Scope {
	if m == "" || !ident.Printable(m) {
		return otlp.Scope{Name: "tracemark"}
	}
	path, version := m, ""
	if i := strings.LastIndexByte(m, '@'); i > 0 {
		path, version = m[:i], m[i+1:]
	}
	return otlp.Scope{Name: path, Version: version}
}

// lookup learns which module each marker belongs to (for agents whose
// classes do not say): the instrumentation scope of its events.
func (o *otlpOut) lookup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ms, err := o.client.Markers(ctx, "*")
	if err != nil {
		return // the scope stays "tracemark": the events still go out
	}
	for _, m := range ms {
		o.scopes[m.Name] = moduleScope(m.Module)
		o.spanRule(m.Name, m.Span)
	}
}

// spanRule takes marker name's span declaration, if it has one. Call with
// mu held.
func (o *otlpOut) spanRule(name string, s *wire.MarkerSpan) {
	if s == nil {
		return
	}
	o.spans[name] = &otlp.SpanRule{Duration: s.Duration, Start: s.Start, Keys: s.Keys}
	if s.Start != "" {
		o.starts[s.Start] = s.Keys
	}
}

// learn takes the span declarations of the classes a stream announces,
// before the records of any of them are exported. An agent whose classes
// say their module says their span declarations too, so that a marker
// defined after the start needs no look-up in the marker list: classOf
// would make it holding mu, and every worker would wait for the agent's
// answer. A start marker's pairing keys come from its end marker's
// class, which the agent announces with it or before.
func (o *otlpOut) learn(cs []wire.EventClass) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range cs {
		ec := &cs[i]
		if ec.Module == "" {
			continue // an older agent's class, or a marker without a module: classOf asks
		}
		o.told[ec.Name] = true
		o.spanRule(ec.Name, ec.Span)
	}
}

// class returns the exporter's description of a record's class.
func (o *otlpOut) class(ec *wire.EventClass) *otlp.Class {
	if ec == o.lastEC {
		return o.lastClass // events come in runs of one class
	}
	c := o.classOf(ec)
	o.lastEC, o.lastClass = ec, c
	return c
}

func (o *otlpOut) classOf(ec *wire.EventClass) *otlp.Class {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.classes[ec]; ok {
		return c
	}
	if _, ok := o.scopes[ec.Name]; !ok && !o.asked[ec.Name] && !o.told[ec.Name] {
		// A marker defined after the start, of a class that does not
		// say its span: its span rule, and the pairing keys of the
		// spans it starts, are in the marker list.
		o.asked[ec.Name] = true
		o.lookup(context.Background())
	}
	scope := moduleScope(ec.Module) // the agent's class says it
	if sc, ok := o.scopes[ec.Name]; ok && ec.Module == "" {
		scope = sc // an older agent's class: its marker list says it
	}
	c := &otlp.Class{Name: ec.Name, Scope: scope, Fields: make([]otlp.Field, len(ec.Fields)),
		Span: o.spans[ec.Name], StartKeys: o.starts[ec.Name]}
	for i, f := range ec.Fields {
		c.Fields[i] = otlp.Field{Name: f.Name, Kind: f.Kind}
	}
	o.classes[ec] = c
	return c
}

// hook returns an onRecord hook that exports each record, then calls next
// (if any).
func (o *otlpOut) hook(next func(*wire.Record) error) func(*wire.Record) error {
	if o == nil {
		return next
	}
	return func(r *wire.Record) error {
		// Observed when its packet arrived: one clock reading per
		// packet, not per event.
		observed := int64(0)
		if o.c != nil {
			observed = o.c.arrived
		}
		if observed == 0 {
			observed = time.Now().UnixNano()
		}
		o.exp.LogAt(o.class(r.Class), o.cc.wallNS(r.TS), observed, r.Fields, r.Truncated)
		if next != nil {
			return next(r)
		}
		return nil
	}
}

// progress is the exporter's part of the progress line.
func (o *otlpOut) progress() string {
	if o == nil {
		return ""
	}
	st := o.exp.Stats()
	s := fmt.Sprintf("  otlp %d sent", st.Exported)
	if st.Queued > 0 {
		s += fmt.Sprintf(" %d queued", st.Queued)
	}
	if st.Lost() > 0 {
		s += fmt.Sprintf(" %d dropped", st.Lost())
	}
	if err := o.exp.Err(); err != nil {
		s += " (" + shortOTLPError(err) + ")"
	}
	return s
}

// shortOTLPError says what the collector answered, for the progress line.
func shortOTLPError(err error) string {
	var herr *otlp.HTTPError
	if errors.As(err, &herr) {
		return fmt.Sprintf("%d %s", herr.StatusCode, strings.ToLower(http.StatusText(herr.StatusCode)))
	}
	return "collector unreachable, retrying"
}

// noticeRejection returns a warning the first time the collector
// refuses events for good, and again whenever it refuses them for
// another reason (another status), or "". Refused events are not sent
// again: a wrong URL or missing credentials would otherwise show only in
// the summary at exit (or in a progress line the operator may not see),
// when every event of the recording has been lost.
func (o *otlpOut) noticeRejection() string {
	rej := o.exp.Rejection()
	if rej == nil || !newRefusal(&o.warned, rej) {
		return ""
	}
	// No count: the refused batch may not be counted yet. The exit's
	// OTLP line counts them all.
	return fmt.Sprintf("%swarning: OTLP: the collector refuses events, which are lost, not retried: %v; check the URL and OTEL_EXPORTER_OTLP_HEADERS", o.prefix, rej)
}

// newRefusal reports whether the refusal err differs from the one last
// shown, keyed in *last, and keys it there: refusals differ by status, or
// as partial successes, whose messages vary with their counts.
func newRefusal(last *string, err error) bool {
	key := "partial"
	var herr *otlp.HTTPError
	if errors.As(err, &herr) {
		key = strconv.Itoa(herr.StatusCode)
	}
	if key == *last {
		return false
	}
	*last = key
	return true
}

// finish sends what is queued (waiting at most wait) and prints what was
// exported to w. It returns an error if the collector refused events for
// good (a 4xx answer: a wrong URL, missing credentials), since that needs
// the operator; events lost to a full queue are reported, not failed.
func (o *otlpOut) finish(w io.Writer, wait time.Duration) error {
	if o == nil {
		return nil
	}
	o.metrics.stop(wait / 4)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var b strings.Builder
	err := o.exp.Close(ctx)
	var metricsErr error
	if o.c != nil {
		// The final counts, in the time the events left: they come
		// first. ExportMetrics works after Close.
		metricsErr = o.exp.ExportMetrics(ctx, o.captureMetrics())
	}
	st := o.exp.Stats()
	what := "events"
	if st.Spans > 0 {
		what = fmt.Sprintf("events and spans (%d spans", st.Spans)
		if st.Unpaired > 0 {
			what += fmt.Sprintf(", %d span ends or starts unpaired", st.Unpaired)
		}
		what += ")"
	}
	fmt.Fprintf(&b, "%sOTLP: %d of %d %s exported to %s", o.prefix, st.Exported, st.Events, what, o.url)
	if st.Lost() > 0 {
		fmt.Fprintf(&b, "; lost %d (%d dropped: queue full, %d rejected by the collector, %d unsent at exit)",
			st.Lost(), st.Dropped, st.Rejected, st.Failed)
	}
	b.WriteByte('\n')
	if metricsErr != nil {
		fmt.Fprintf(&b, "%sOTLP: the counts (%s, %s) were not exported: %v\n", o.prefix, metricEvents, metricLost, metricsErr)
	}
	var failed error
	if rej := o.exp.Rejection(); rej != nil {
		failed = fmt.Errorf("otlp export: %w", rej)
	} else if last := o.exp.Err(); err != nil && last != nil {
		fmt.Fprintf(&b, "%sOTLP: last error: %v\n", o.prefix, last)
	}
	// One write: host-wide, the processes finish concurrently.
	io.WriteString(w, b.String())
	return failed
}

// track makes o export the counts of capture c as OTLP metrics: after
// each stats frame (in the background, skipped while the previous export
// is under way: the sums are cumulative), and once more by finish. Call
// it after setting c.onStats, which it wraps; c's counters are read on
// its own goroutine only. o also learns the span declarations of the
// classes c announces.
func (o *otlpOut) track(c *capture) {
	if o == nil {
		return
	}
	o.c = c
	c.onClasses = o.learn
	o.metrics = &otlpMetrics{o: o}
	next := c.onStats
	c.onStats = func() {
		if line := o.noticeRejection(); line != "" && o.warn != nil {
			o.warn(line)
		}
		if next != nil {
			next()
		}
		o.metrics.update(o.captureMetrics())
	}
}

// captureMetrics returns the recording's counts as cumulative sums since
// its start: the events received per marker (metricEvents, attribute
// marker) and the events the process's buffers lost (metricLost: in
// discard mode reason buffer_full, in overwrite mode overwritten, which
// is what that mode is for).
func (o *otlpOut) captureMetrics() []otlp.Metric {
	c := o.c
	start, now := c.started.UnixNano(), time.Now().UnixNano()
	events := &otlp.Sum{Monotonic: true}
	for _, name := range c.markers() {
		events.Points = append(events.Points, otlp.NumberPoint{
			Attributes: []otlp.Attribute{{Key: "marker", Value: name}}, StartNS: start, TimeNS: now, Value: int64(c.count(name))})
	}
	reason := "buffer_full"
	if c.s.Hello.Mode == "overwrite" {
		reason = "overwritten"
	}
	return []otlp.Metric{
		{Name: metricEvents, Unit: "{event}", Scope: recordScope, Description: "Events recorded, per marker", Sum: events},
		{Name: metricLost, Unit: "{event}", Scope: recordScope, Description: "Events the traced process's buffers lost",
			Sum: &otlp.Sum{Monotonic: true, Points: []otlp.NumberPoint{
				{Attributes: []otlp.Attribute{{Key: "reason", Value: reason}}, StartNS: start, TimeNS: now, Value: int64(c.lost())}}}},
	}
}

// recordScope is the instrumentation scope of the metrics of record and
// stream --otlp.
var recordScope = otlp.Scope{Name: "tracemark/record"}

// exportTrace sends a CTF trace to a collector (convert --otlp). The
// trace's metadata keeps the marker kinds (bools, durations, ids), span
// declarations and modules (the scope; "tracemark" for traces written
// before they were kept). The resource comes
// from the trace's environment (procname, vpid, hostname). Nothing is
// dropped for a slow collector: reading waits for the queue.
func exportTrace(dir, url string, a *app) error {
	cfg, err := otlpConfig(a, url)
	if err != nil {
		return err
	}
	r, err := ctf.Open(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	warnTrace(a, dir, r)
	env := r.Info().Env
	pid, _ := strconv.Atoi(env["vpid"])
	res, err := otlp.ProcessResource(otlp.Process{PID: pid, Executable: env["procname"], Host: env["hostname"]})
	if err != nil {
		return usagef("--otlp: %v", err)
	}
	exp, err := cfg.newExporter(otlp.WithResource(res...), otlp.WithBlock())
	if err != nil {
		return err
	}
	o := &otlpOut{url: url, exp: exp}
	classes := map[*ctf.EventClass]*otlp.Class{}
	starts := map[string][]string{} // start marker -> pairing keys
	for _, ec := range r.Classes() {
		if s := ec.Span; s != nil && s.Start != "" {
			starts[s.Start] = s.Keys
		}
	}
	var readErr error
	var lost uint64
	for ev, err := range r.Events() {
		if err != nil {
			readErr = err
			break
		}
		if ev.Class == nil {
			lost += ev.Discarded
			continue
		}
		oc := classes[ev.Class]
		if oc == nil {
			oc = traceClass(ev.Class, starts)
			classes[ev.Class] = oc
		}
		exp.Log(oc, ev.Time, ev.Fields, ev.Truncated)
	}
	err = o.finish(a.stdout, a.timeout)
	if lost > 0 {
		fmt.Fprintf(a.stdout, "The trace records %d events lost while recording.\n", lost)
	}
	if readErr != nil {
		return readErr
	}
	return err
}

// traceClass is the exporter's description of a trace file's class: the
// field kinds, span declaration and module that its metadata keeps.
func traceClass(ec *ctf.EventClass, starts map[string][]string) *otlp.Class {
	wc := wire.ClassFromCTF(*ec, nil)
	oc := &otlp.Class{Name: ec.Name, Scope: moduleScope(ec.Module), StartKeys: starts[ec.Name]}
	for _, f := range wc.Fields {
		oc.Fields = append(oc.Fields, otlp.Field{Name: f.Name, Kind: f.Kind})
	}
	if s := wc.Span; s != nil {
		oc.Span = &otlp.SpanRule{Duration: s.Duration, Start: s.Start, Keys: s.Keys}
	}
	return oc
}
