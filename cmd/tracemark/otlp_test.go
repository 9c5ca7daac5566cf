package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/otlptest"
	"github.com/tracemark/tracemark/internal/wire"
)

// record --otlp exports every event to the collector, with its fields,
// the traced process as the resource and the marker's module as scope,
// and says so in the summary. A setting of the environment that the
// exporter ignores is shown as a warning; the batch size of
// OTEL_BLRP_MAX_EXPORT_BATCH_SIZE holds.
func TestRecordOTLP(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	var mu sync.Mutex
	var batches []int
	col.Answer(func(path string, n int) (int, map[string]string, []byte) {
		if path == "/v1/logs" {
			mu.Lock()
			batches = append(batches, n)
			mu.Unlock()
		}
		return 0, nil, nil
	})
	e := newEnv(t)
	e.environ = append(e.environ, "OTEL_RESOURCE_ATTRIBUTES=deployment.environment=test", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=zstd",
		"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=10", "OTEL_BLRP_SCHEDULE_DELAY=soon")
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir, "--otlp", col.URL(), "--progress", "none")
	before := uint64(time.Now().UnixNano())
	target.do(t, "fire 100")
	target.do(t, "other 2")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	after := uint64(time.Now().UnixNano())
	if out := rec.stdout.text(); !strings.Contains(out, "OTLP: 102 of 102 events exported to "+col.URL()) {
		t.Errorf("summary does not report the export:\n%s", out)
	}
	if w := `tracemark: warning: --otlp: OTEL_EXPORTER_OTLP_LOGS_COMPRESSION="zstd" is not gzip or none: ignored`; !strings.Contains(rec.stderr.text(), w) || col.Gzipped() != 0 {
		t.Errorf("want %s, and requests uncompressed (%d gzipped); stderr:\n%s", w, col.Gzipped(), rec.stderr.text())
	}
	if w := `tracemark: warning: --otlp: OTEL_BLRP_SCHEDULE_DELAY="soon" is not a positive count: ignored`; !strings.Contains(rec.stderr.text(), w) {
		t.Errorf("want %s; stderr:\n%s", w, rec.stderr.text())
	}
	// An empty batch takes a packet's records whole up to twice the
	// size.
	mu.Lock()
	if len(batches) < 6 || slices.Max(batches) > 20 {
		t.Errorf("log records sent in batches of %v: want at most 20 each", batches)
	}
	mu.Unlock()
	logs := col.Logs()
	if len(logs) != 102 {
		t.Fatalf("the collector received %d events, want 102", len(logs))
	}
	values := 0
	for _, l := range logs {
		// Observed when its packet reached the CLI: after the event,
		// within the recording.
		if l.Observed < l.Time || l.Observed < before || l.Observed > after {
			t.Errorf("event %s at %d observed at %d, outside [%d, %d]", l.Name, l.Time, l.Observed, before, after)
		}
		if l.Name != "test:value" {
			continue
		}
		i := l.Attrs["i"].(int64)
		key, lat := valueOf(int(i))
		want := map[string]any{"i": i, "key": key, "lat": int64(lat)}
		if !reflect.DeepEqual(l.Attrs, want) {
			t.Errorf("event %d: attributes %v, want %v", i, l.Attrs, want)
		}
		values++
	}
	if values != 100 {
		t.Errorf("%d test:value events, want 100", values)
	}
	l := logs[0]
	if l.Resource["process.pid"] != int64(target.pid()) || l.Resource["service.name"] != "unknown_service:tm-target" ||
		l.Resource["deployment.environment"] != "test" || l.Resource["telemetry.sdk.name"] != "tracemark" {
		t.Errorf("resource %v", l.Resource)
	}
	if l.Scope != "github.com/tracemark/tracemark" || l.Time == 0 {
		t.Errorf("scope %q time %d", l.Scope, l.Time)
	}
}

// A collector that refuses the export (here: credentials missing) fails
// the command with the collector's answer, and the progress line shows it.
func TestStreamOTLPRejected(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	col.Answer(func(string, int) (int, map[string]string, []byte) { return 401, nil, []byte("no token") })
	e := newEnv(t)
	target := e.startTarget()
	p := e.start("cli", "stream", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--otlp", col.URL())
	p.stderr.waitFor(t, "Streaming 1 marker ")
	target.do(t, "fire 3")
	p.stdout.waitFor(t, "i=2 ")
	p.signal(t, os.Interrupt)
	code := p.wait(t)
	msg := p.stderr.text()
	if code == 0 || !strings.Contains(msg, "401 Unauthorized: no token") || !strings.Contains(msg, "3 rejected by the collector") {
		t.Errorf("stream exited %d:\n%s", code, msg)
	}
}

// A collector that refuses events for good is said as it happens, even
// with --progress none and no trace to fall back on: once per status,
// not once per refused request, and the command still fails at exit.
func TestRecordOTLPRejectionWarned(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	var logs atomic.Int32
	second := make(chan struct{})
	col.Answer(func(path string, _ int) (int, map[string]string, []byte) {
		if path != "/v1/logs" {
			return 0, nil, nil
		}
		switch logs.Add(1) {
		case 1:
			return 401, nil, []byte("no token")
		case 2:
			close(second)
			return 401, nil, []byte("no token")
		}
		return 403, nil, []byte("not this tenant")
	})
	e := newEnv(t)
	target := e.startTarget()
	rec := e.recordNoOutput(t, target, "--otlp", col.URL(), "--progress", "none", "--interval", "50ms")
	target.do(t, "fire 3")
	rec.stderr.waitFor(t, "401 Unauthorized: no token")
	target.do(t, "fire 3")
	select {
	case <-second:
	case <-time.After(time.Minute):
		t.Fatalf("the second export never came:\n%s", rec.stderr.text())
	}
	target.do(t, "fire 3")
	rec.stderr.waitFor(t, "403 Forbidden: not this tenant")
	rec.signal(t, os.Interrupt)
	code := rec.wait(t)
	msg := rec.stderr.text()
	warning := "warning: OTLP: the collector refuses events, which are lost, not retried"
	if n := strings.Count(msg, warning); n != 2 || code == 0 {
		t.Errorf("record exited %d with %d warnings, want 2 (one per status):\n%s", code, n, msg)
	}
	if !strings.Contains(msg, warning+": otlp: "+col.URL()+"/v1/logs answered 401 Unauthorized: no token") {
		t.Errorf("the first warning does not say what the collector answered:\n%s", msg)
	}
}

// record --otlp --no-output exports every event and writes no trace: no
// directory appears where the default trace directory would be.
func TestRecordOTLPNoOutput(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	e := newEnv(t)
	target := e.startTarget()
	rec := e.recordNoOutput(t, target, "--otlp", col.URL(), "--progress", "none")
	target.do(t, "fire 100")
	target.do(t, "other 2")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	out := rec.stdout.text()
	for _, want := range []string{"Recorded 102 events", "OTLP: 102 of 102 events exported to " + col.URL(), "Lost events: none", "Trace: none (--no-output)"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(rec.stderr.text(), " into ") {
		t.Errorf("announces a trace directory:\n%s", rec.stderr.text())
	}
	if logs := col.Logs(); len(logs) != 102 {
		t.Errorf("the collector received %d events, want 102", len(logs))
	}
	traces, err := filepath.Glob(filepath.Join(e.runtime, "tracemark-*"))
	if err != nil || len(traces) != 0 {
		t.Errorf("trace directories written: %v %v", traces, err)
	}
}

// record --otlp --no-output whose process is killed exits 3 and says
// where the events went: to the exporter, which says how many it sent.
func TestRecordOTLPNoOutputTargetKilled(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	e := newEnv(t)
	target := e.startTarget()
	rec := e.recordNoOutput(t, target, "--otlp", col.URL(), "--progress", "plain", "--interval", "20ms")
	target.do(t, "fire 100")
	rec.stderr.waitFor(t, " 100 events ")
	target.signal(t, syscall.SIGKILL)
	if code := rec.wait(t); code != exitTargetDied {
		t.Fatalf("record exited %d, want %d:\n%s", code, exitTargetDied, rec.stderr.text())
	}
	msg := rec.stderr.text()
	if !strings.Contains(msg, fmt.Sprintf("process %d died during the recording; no trace (--no-output): the 100 events received until then were handed to the exporter", target.pid())) {
		t.Errorf("stderr does not say where the events went:\n%s", msg)
	}
	if out := rec.stdout.text(); !strings.Contains(out, "OTLP: 100 of 100 events exported") || len(col.Logs()) != 100 {
		t.Errorf("the collector received %d events:\n%s", len(col.Logs()), out)
	}
}

// --no-output is refused where it would lose events or cannot apply.
func TestNoOutputChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--no-output"}, "--no-output needs --otlp"},
		{[]string{"--no-output", "--otlp", "http://localhost:4318", "-o", "t"}, "--no-output and -o t: choose one"},
		{[]string{"--no-output", "--otlp", "http://localhost:4318", "--go-trace"}, "--no-output and --go-trace"},
		{[]string{"--no-output", "--otlp", "http://localhost:4318", "--context", "pid"}, "--no-output and --context"},
		{[]string{"--no-output", "--otlp", "http://localhost:4318", "--all", "-o", "t"}, "--no-output and -o t: choose one"},
	} {
		r := e.cli(append([]string{"record", "-p", "1", "-e", "x"}, c.args...)...)
		if slices.Contains(c.args, "--all") {
			r = e.cli(append([]string{"record", "-e", "x"}, c.args...)...)
		}
		if r.code != exitUsage || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("%v: exit %d: %s", c.args, r.code, r.stderr)
		}
	}
}

func TestOTLPFlagChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.cli("record", "-p", "1", "-e", "x", "--otlp", "localhost:4318")
	if r.code != exitUsage || !strings.Contains(r.stderr, "want an http:// or https:// URL") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
}

// The demo service declares spans: every http:request_done and
// storage:query event becomes a span as long as its latency, and each
// batch job a span from its start to its end.
func TestRecordOTLPSpans(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	e := newEnv(t)
	_, pid := e.startDemoService("--rate", "200", "--lifetime", "1m", "--attached")
	r := e.cli("record", "-p", pid, "-e", "http:request_done", "-e", "storage:query", "-o", filepath.Join(e.runtime, "trace"),
		"--duration", "700ms", "--progress", "none", "--otlp", col.URL())
	if r.code != 0 {
		t.Fatalf("record exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	logs, spans := col.Logs(), col.Spans()
	byName := map[string]int{}
	for _, l := range logs {
		byName[l.Name]++
	}
	spanNames := map[string]int{}
	for _, s := range spans {
		spanNames[s.Name]++
		lat, ok := s.Attrs["latency"].(int64)
		if !ok || int64(s.End-s.Time) != lat || len(s.TraceID) != 16 {
			t.Errorf("span %s: start %d end %d latency %v", s.Name, s.Time, s.End, s.Attrs["latency"])
			break
		}
	}
	if byName["http:request_done"] == 0 || byName["storage:query"] == 0 {
		t.Fatalf("the demo service fired no events: %v", byName)
	}
	if !reflect.DeepEqual(spanNames, byName) {
		t.Errorf("spans %v, want one per event %v", spanNames, byName)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("(%d spans)", len(spans))) {
		t.Errorf("summary does not count the spans:\n%s", r.stdout)
	}
}

// Markers defined after the recording started make spans too: the
// agent's classes say their span declaration and module, which the
// workers of record --otlp take with no look-up in the marker list.
func TestRecordOTLPLateSpans(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	e := newEnv(t)
	target := e.startTarget()
	rec := e.record(t, target, filepath.Join(e.runtime, "trace"), "--progress", "none", "--otlp", col.URL())
	const n = 20
	target.do(t, fmt.Sprintf("late %d", n))
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	spans := col.Spans()
	if len(spans) != n {
		t.Fatalf("%d spans, want %d:\n%s", len(spans), n, rec.stdout.text())
	}
	seen := map[int64]bool{}
	for _, s := range spans {
		id, _ := s.Attrs["id"].(int64)
		if s.Name != "test:late_done" || s.Attrs["what"] != "late" || s.End < s.Time || seen[id] ||
			s.Scope != "example.com/late" || s.ScopeVersion != "v1.0.0" {
			t.Fatalf("span %+v", s)
		}
		seen[id] = true
	}
	if logs := col.Logs(); len(logs) != 2*n {
		t.Errorf("%d events, want %d", len(logs), 2*n)
	}
}

// convert --otlp sends a recorded trace to the collector, every event
// with its fields and time, the traced process as the resource and the
// marker's module, which the trace keeps, as the scope.
func TestConvertOTLP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	var markers []wire.Marker
	if r := e.cli("list", "-p", strconv.Itoa(target.pid()), "test:value", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &markers) != nil || len(markers) != 1 {
		t.Fatalf("list --json exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	module := markers[0].Module // path@version
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir, "--progress", "none")
	target.do(t, "fire 50")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	col := otlptest.NewReceiver(t)
	r := e.cli("convert", dir, "--otlp", col.URL())
	if r.code != 0 || !strings.Contains(r.stdout, "OTLP: 50 of 50 events exported") {
		t.Fatalf("convert --otlp exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	logs := col.Logs()
	if len(logs) != 50 {
		t.Fatalf("received %d events, want 50", len(logs))
	}
	var last uint64
	for i, l := range logs {
		key, lat := valueOf(i)
		if want := map[string]any{"i": int64(i), "key": key, "lat": int64(lat)}; !reflect.DeepEqual(l.Attrs, want) {
			t.Fatalf("event %d: %v, want %v", i, l.Attrs, want)
		}
		if l.Time < last || l.Time < 1e18 {
			t.Fatalf("event %d: time %d is not wall-clock time in order", i, l.Time)
		}
		last = l.Time
	}
	if logs[0].Resource["process.pid"] != int64(target.pid()) || logs[0].Resource["service.name"] != "unknown_service:tm-target" {
		t.Errorf("resource %v", logs[0].Resource)
	}
	if l := logs[0]; !strings.HasPrefix(module, "github.com/tracemark/tracemark") || l.Scope+"@"+l.ScopeVersion != module && l.Scope != module {
		t.Errorf("scope %q version %q, want the marker's module %q", l.Scope, l.ScopeVersion, module)
	}
}

// convert --otlp makes spans of a trace file's events as the recording
// did: the trace keeps the markers' span declarations. The demo service
// declares duration spans (http:request_done, storage:query) and a
// start/done pair (batch:job_start, batch:job_done, once a second).
func TestConvertOTLPSpansFromTrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, pid := e.startDemoService("--rate", "100", "--lifetime", "1m", "--attached")
	dir := filepath.Join(e.runtime, "trace")
	r := e.cli("record", "-p", pid, "-e", "http:request_done", "-e", "storage:query", "-e", "batch:*", "-o", dir,
		"--duration", "2500ms", "--progress", "none")
	if r.code != 0 {
		t.Fatalf("record exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	// What the trace says: duration events, and job ends with a start.
	tr, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	var jobs []int64 // durations of the paired jobs
	started := map[string]int64{}
	for ev, err := range tr.Events() {
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Name() {
		case "http:request_done", "storage:query":
			want[ev.Name()]++
		case "batch:job_start":
			started[string(ev.Fields[0].Bytes)] = ev.Time
		case "batch:job_done":
			if s, ok := started[string(ev.Fields[0].Bytes)]; ok {
				want[ev.Name()]++
				jobs = append(jobs, ev.Time-s)
				delete(started, string(ev.Fields[0].Bytes))
			}
		}
	}
	tr.Close()
	if want["batch:job_done"] == 0 || want["storage:query"] == 0 {
		t.Fatalf("the trace has no paired job or no query: %v", want)
	}
	col := otlptest.NewReceiver(t)
	r = e.cli("convert", dir, "--otlp", col.URL())
	if r.code != 0 {
		t.Fatalf("convert --otlp exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	got := map[string]int{}
	var gotJobs []int64
	for _, s := range col.Spans() {
		got[s.Name]++
		if s.Name == "batch:job_done" {
			gotJobs = append(gotJobs, int64(s.End-s.Time))
		}
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotJobs, jobs) {
		t.Errorf("spans %v (jobs %v), want %v (jobs %v)", got, gotJobs, want, jobs)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("(%d spans)", len(col.Spans()))) {
		t.Errorf("convert does not count the spans:\n%s", r.stdout)
	}
}

// record --otlp of a stream whose records carry an event context: the
// export's workers decode past it, so every event arrives with its own
// fields (the firing thread's id in "i").
func TestRecordOTLPWithContext(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	e := newEnv(t)
	target := e.startTarget()
	rec := e.record(t, target, filepath.Join(e.runtime, "trace"), "--context", "pid,procname,vtid", "--otlp", col.URL(), "--progress", "none")
	target.do(t, "threads 2 50")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	logs := col.Logs()
	if len(logs) != 100 {
		t.Fatalf("the collector received %d events, want 100", len(logs))
	}
	perThread := map[any]int{}
	for _, l := range logs {
		if l.Name != "test:value" || l.Attrs["key"] != "thread" {
			t.Fatalf("event %s %v: not a test:value of a thread", l.Name, l.Attrs)
		}
		perThread[l.Attrs["i"]]++
	}
	if len(perThread) != 2 {
		t.Errorf("events per thread id %v, want 50 from each of 2 threads", perThread)
	}
}
