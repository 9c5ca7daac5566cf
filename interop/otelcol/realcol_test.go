package otelcol

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tracemark/tracemark/export/otlp"
)

// realCollector returns the path of the collector binary that
// scripts/build-otelcol builds, or skips the test.
func realCollector(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TRACEMARK_OTELCOL")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Skipf("SKIP: no cache directory (%v) and TRACEMARK_OTELCOL unset", err)
		}
		dir = filepath.Join(cache, "tracemark", "otelcol-v0.165.0")
	}
	bin := filepath.Join(dir, "tracemark-otelcol")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("SKIP: no collector binary in %s: run scripts/build-otelcol, or set TRACEMARK_OTELCOL", dir)
	}
	return bin
}

// TestRealCollector sends events, spans and metrics through a real
// collector process (receiver, pipelines, OTLP/HTTP exporter, as an
// operator runs it) to the collector's receiver in the test: every event
// arrives once with every field, and the span and the metric too.
func TestRealCollector(t *testing.T) {
	bin := realCollector(t)
	s := &sink{}
	next := startCollector(t, freeAddr(t), s)
	in := freeAddr(t)
	conf := filepath.Join(t.TempDir(), "collector.yaml")
	// No internal telemetry server: its fixed port would collide with
	// other collectors on the machine.
	yaml := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
exporters:
  otlphttp:
    endpoint: %s
    compression: none
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs: {receivers: [otlp], exporters: [otlphttp]}
    traces: {receivers: [otlp], exporters: [otlphttp]}
    metrics: {receivers: [otlp], exporters: [otlphttp]}
`, in, next.url())
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", conf)
	out, err := os.Create(filepath.Join(t.TempDir(), "collector.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		<-exited
	})
	log := func() string { b, _ := os.ReadFile(out.Name()); return string(b) }

	// The exporter retries until the collector listens.
	const n = 2000
	e := newExporter(t, "http://"+in)
	stream(e, n, nil)
	span := otlp.SpanData{Name: "http:request", Scope: otlp.Scope{Name: "example.com/shop"}, TraceID: traceID, SpanID: spanID, StartNS: 1000, EndNS: 4000}
	e.Span(&span)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := otlp.Metric{Name: "tracemark.events.lost", Unit: "{event}", Scope: otlp.Scope{Name: "tracemark/record"},
		Sum: &otlp.Sum{Monotonic: true, Points: []otlp.NumberPoint{{StartNS: 10, TimeNS: 20, Value: 3}}}}
	if err := e.ExportMetrics(ctx, []otlp.Metric{m}); err != nil {
		t.Fatalf("metrics: %v\n%s", err, log())
	}
	if err := e.Close(ctx); err != nil {
		t.Fatalf("closing the exporter: %v (%+v)\n%s", err, e.Stats(), log())
	}
	// The collector forwards on its own time: wait for all of it.
	for {
		recs := s.logRecords()
		s.mu.Lock()
		spans, metrics := len(s.traces), len(s.metrics)
		s.mu.Unlock()
		if len(recs) >= n && spans > 0 && metrics > 0 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the collector exited: %v\n%s", err, log())
		case <-ctx.Done():
			t.Fatalf("the collector forwarded %d of %d events, %d span batches, %d metric batches\n%s", len(recs), n, spans, metrics, log())
		case <-time.After(10 * time.Millisecond): // polling the sink, not ordering events
		}
	}
	seen := map[int64]int{}
	for _, r := range s.logRecords() {
		v, _ := r.rec.Attributes().Get("seq")
		seen[v.Int()]++
	}
	if st := e.Stats(); len(seen) != n || st.Lost() != 0 || st.Exported != n+1 {
		t.Errorf("received %d distinct events of %d; exporter %+v", len(seen), n, st)
	}
	for _, r := range s.logRecords()[:1] {
		checkAttrs(t, r.rec.Attributes(), map[string]any{
			"method": "GET", "status": int64(-404), "size": int64(1 << 31), "big": "18446744073709551615",
			"ratio": 0.25, "cached": true, "latency": int64(42 * time.Millisecond), "digest": []byte{0, 1, 0xff},
			"seq": r.rec.Attributes().AsRaw()["seq"],
		})
		if pid, _ := r.res.Resource().Attributes().Get("process.pid"); pid.Int() != 4242 || r.scope.Scope().Name() != "example.com/shop" {
			t.Errorf("resource %v scope %q", r.res.Resource().Attributes().AsRaw(), r.scope.Scope().Name())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := s.metrics[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	if sum.Name() != "tracemark.events.lost" || !sum.Sum().IsMonotonic() || sum.Sum().DataPoints().At(0).IntValue() != 3 {
		t.Errorf("metric %s monotonic %v", sum.Name(), sum.Sum().IsMonotonic())
	}
	if sp := s.traces[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0); sp.Name() != "http:request" || sp.EndTimestamp() != 4000 {
		t.Errorf("span %q end %d", sp.Name(), sp.EndTimestamp())
	}
}
