package main

import (
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/otlptest"
)

// The periodic export of cumulative counts ends before the final one: an
// export under way is waited for, and none starts after stop, so that an
// older, smaller sum cannot reach the collector after the final counts.
func TestOTLPMetricsStopBeforeTheFinalCounts(t *testing.T) {
	col := otlptest.NewReceiver(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the receiver's cleanup, which waits for its handlers
	first := true
	col.Answer(func(path string, n int) (int, map[string]string, []byte) {
		if path == "/v1/metrics" && first {
			first = false
			close(entered)
			<-release
		}
		return 0, nil, nil
	})
	exp, err := otlp.New(col.URL())
	if err != nil {
		t.Fatal(err)
	}
	m := &otlpMetrics{o: &otlpOut{url: col.URL(), exp: exp}}
	sum := func(v int64) []otlp.Metric {
		return []otlp.Metric{{Name: metricEvents, Sum: &otlp.Sum{Monotonic: true,
			Points: []otlp.NumberPoint{{Attributes: []otlp.Attribute{{Key: "marker", Value: "m"}}, Value: v}}}}}
	}
	m.update(sum(1))
	<-entered // the first export is at the collector, unanswered
	stopped := make(chan struct{})
	go func() { m.stop(time.Minute); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while an export was under way")
	case <-time.After(50 * time.Millisecond):
	}
	unblock()
	<-stopped
	if got := len(col.Metrics()); got != 1 {
		t.Fatalf("%d metrics requests received when stop returned, want the one under way", got)
	}
	m.update(sum(2)) // after stop: not sent
	if err := exp.ExportMetrics(t.Context(), sum(3)); err != nil {
		t.Fatal(err)
	}
	ms := col.Metrics()
	if len(ms) != 2 || otlptest.SumValue(ms[1], metricEvents, "marker", "m") != 3 {
		t.Fatalf("the collector got %d metrics requests, want 2 with the final counts last", len(ms))
	}
}
