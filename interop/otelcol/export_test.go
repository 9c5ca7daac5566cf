package otelcol

import (
	"bytes"
	"context"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
)

var class = otlp.Class{
	Name: "http:request_done",
	Fields: []otlp.Field{
		{Name: "method", Kind: "string"}, {Name: "status", Kind: "int16"}, {Name: "size", Kind: "uint32"},
		{Name: "big", Kind: "uint64"}, {Name: "ratio", Kind: "float32"}, {Name: "cached", Kind: "bool"},
		{Name: "latency", Kind: "duration"}, {Name: "digest", Kind: "bytes"},
		{Name: "trace", Kind: "trace_id"}, {Name: "span", Kind: "span_id"}, {Name: "seq", Kind: "uint64"},
	},
	Scope: otlp.Scope{Name: "example.com/shop", Version: "v1.4.2"},
}

var (
	traceID = [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID  = [8]byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

func values(seq uint64) []ctf.Value {
	return []ctf.Value{
		ctf.StringValue("GET"), ctf.IntValue(-404), ctf.UintValue(1 << 31), ctf.UintValue(math.MaxUint64),
		ctf.FloatValue(0.25), ctf.UintValue(1), ctf.IntValue(int64(42 * time.Millisecond)), ctf.BytesValue([]byte{0, 1, 0xff}),
		ctf.BytesValue(traceID[:]), ctf.BytesValue(spanID[:]), ctf.UintValue(seq),
	}
}

func newExporter(t *testing.T, endpoint string, opts ...otlp.Option) *otlp.Exporter {
	t.Helper()
	res, err := otlp.ProcessResource(otlp.Process{PID: 4242, Executable: "/srv/bin/shop", Host: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	// The test's options come last: they override these.
	base := []otlp.Option{otlp.WithResource(res...), otlp.WithRetry(time.Millisecond, 20*time.Millisecond)}
	e, err := otlp.New(endpoint, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// Every field arrives with its value and type, and the timestamps,
// scope, resource, trace and span ids are exact, as the collector
// decodes them.
func TestLogRecordsExact(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "shop")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
	for _, comp := range []string{otlp.CompressionNone, otlp.CompressionGzip} {
		t.Run(comp, func(t *testing.T) {
			s := &sink{}
			col := startCollector(t, freeAddr(t), s)
			e := newExporter(t, col.url(), otlp.WithCompression(comp))
			c := class
			other := otlp.Class{Name: "db:query", Fields: []otlp.Field{{Name: "q", Kind: "string"}}, Scope: otlp.Scope{Name: "example.com/db"}}
			const ts = int64(1764600000123456789)
			before := time.Now()
			for i := range 3 {
				e.Log(&c, ts+int64(i), values(uint64(i)), 0)
			}
			e.Log(&other, ts, []ctf.Value{ctf.StringValue("select 1")}, 1)
			if err := e.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			recs := s.logRecords()
			if len(recs) != 4 {
				t.Fatalf("collector received %d log records, want 4", len(recs))
			}
			for i, r := range recs[:3] {
				lr := r.rec
				if lr.EventName() != "http:request_done" {
					t.Errorf("event name %q", lr.EventName())
				}
				if got := lr.Timestamp(); got != pcommon.Timestamp(ts+int64(i)) {
					t.Errorf("timestamp %d, want %d", got, ts+int64(i))
				}
				if obs := lr.ObservedTimestamp().AsTime(); obs.Before(before) || obs.After(time.Now()) {
					t.Errorf("observed timestamp %v not during the test", obs)
				}
				if lr.TraceID() != pcommon.TraceID(traceID) || lr.SpanID() != pcommon.SpanID(spanID) {
					t.Errorf("trace %v span %v", lr.TraceID(), lr.SpanID())
				}
				if r.scope.Scope().Name() != "example.com/shop" || r.scope.Scope().Version() != "v1.4.2" {
					t.Errorf("scope %q %q", r.scope.Scope().Name(), r.scope.Scope().Version())
				}
				checkAttrs(t, lr.Attributes(), map[string]any{
					"method": "GET", "status": int64(-404), "size": int64(1 << 31), "big": "18446744073709551615",
					"ratio": 0.25, "cached": true, "latency": int64(42e6), "digest": []byte{0, 1, 0xff}, "seq": int64(i),
				})
				checkAttrs(t, r.res.Resource().Attributes(), map[string]any{
					"service.name": "shop", "host.name": "web-1", "process.pid": int64(4242),
					"process.executable.name": "shop", "telemetry.sdk.name": "tracemark", "telemetry.sdk.language": "go",
					"deployment.environment": "test",
				})
			}
			last := recs[3]
			if last.scope.Scope().Name() != "example.com/db" || last.scope.Scope().Version() != "" {
				t.Errorf("second scope %q", last.scope.Scope().Name())
			}
			if !last.rec.TraceID().IsEmpty() {
				t.Error("a record without a trace_id field has a trace id")
			}
			trunc, _ := last.rec.Attributes().Get("tracemark.truncated")
			if trunc.Type() != pcommon.ValueTypeSlice || trunc.Slice().Len() != 1 || trunc.Slice().At(0).Str() != "q" {
				t.Errorf("tracemark.truncated = %v", trunc.AsRaw())
			}
		})
	}
}

// checkAttrs compares attributes with their types: int64 means an int
// value, float64 a double, []byte bytes.
func checkAttrs(t *testing.T, m pcommon.Map, want map[string]any) {
	t.Helper()
	if m.Len() != len(want) {
		t.Errorf("%d attributes, want %d: %v", m.Len(), len(want), m.AsRaw())
	}
	for k, w := range want {
		v, ok := m.Get(k)
		if !ok {
			t.Errorf("attribute %q missing", k)
			continue
		}
		switch w := w.(type) {
		case string:
			if v.Type() != pcommon.ValueTypeStr || v.Str() != w {
				t.Errorf("%s = %v (%v), want string %q", k, v.AsRaw(), v.Type(), w)
			}
		case int64:
			if v.Type() != pcommon.ValueTypeInt || v.Int() != w {
				t.Errorf("%s = %v (%v), want int %d", k, v.AsRaw(), v.Type(), w)
			}
		case float64:
			if v.Type() != pcommon.ValueTypeDouble || v.Double() != w {
				t.Errorf("%s = %v (%v), want double %v", k, v.AsRaw(), v.Type(), w)
			}
		case bool:
			if v.Type() != pcommon.ValueTypeBool || v.Bool() != w {
				t.Errorf("%s = %v (%v), want bool %v", k, v.AsRaw(), v.Type(), w)
			}
		case []byte:
			if v.Type() != pcommon.ValueTypeBytes || !bytes.Equal(v.Bytes().AsRaw(), w) {
				t.Errorf("%s = %v (%v), want bytes %x", k, v.AsRaw(), v.Type(), w)
			}
		}
	}
}

func TestSpansAndMetricsExact(t *testing.T) {
	s := &sink{}
	col := startCollector(t, freeAddr(t), s)
	e := newExporter(t, col.url())
	span := otlp.SpanData{
		Name: "http:request", Scope: otlp.Scope{Name: "example.com/shop", Version: "v1"},
		TraceID: traceID, SpanID: spanID, ParentSpanID: [8]byte{9}, StartNS: 1000, EndNS: 4000,
		Attributes: []otlp.Attribute{{Key: "status", Value: int64(200)}, {Key: "path", Value: "/x"}},
	}
	e.Span(&span)
	ms := []otlp.Metric{
		{Name: "events", Unit: "{event}", Scope: otlp.Scope{Name: "tracemark"}, Sum: &otlp.Sum{Monotonic: true, Points: []otlp.NumberPoint{
			{Attributes: []otlp.Attribute{{Key: "marker", Value: "a"}}, StartNS: 10, TimeNS: 20, Value: 7},
		}}},
		{Name: "latency", Unit: "ns", Scope: otlp.Scope{Name: "tracemark"}, Histogram: &otlp.Histogram{Points: []otlp.HistogramPoint{
			{StartNS: 10, TimeNS: 20, Count: 6, Sum: 30, Min: 1, Max: 9, Bounds: []float64{2, 4}, Counts: []uint64{1, 2, 3}},
		}}},
		{Name: "latency_exp", Unit: "ns", Scope: otlp.Scope{Name: "tracemark"}, ExpHistogram: &otlp.ExpHistogram{Points: []otlp.ExpHistogramPoint{
			{StartNS: 10, TimeNS: 20, Count: 5, Sum: 40, Min: 0, Max: 15, Scale: 0, ZeroCount: 1, PositiveOffset: -1, Positive: []uint64{1, 0, 2, 1}},
		}}},
	}
	if err := e.ExportMetrics(context.Background(), ms); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.traces) != 1 || s.traces[0].SpanCount() != 1 {
		t.Fatalf("traces: %d", len(s.traces))
	}
	ss := s.traces[0].ResourceSpans().At(0).ScopeSpans().At(0)
	sp := ss.Spans().At(0)
	if sp.Name() != "http:request" || sp.TraceID() != pcommon.TraceID(traceID) || sp.SpanID() != pcommon.SpanID(spanID) ||
		sp.ParentSpanID() != pcommon.SpanID([8]byte{9}) || sp.StartTimestamp() != 1000 || sp.EndTimestamp() != 4000 ||
		ss.Scope().Name() != "example.com/shop" {
		t.Errorf("span %v %v %v %v %d %d", sp.Name(), sp.TraceID(), sp.SpanID(), sp.ParentSpanID(), sp.StartTimestamp(), sp.EndTimestamp())
	}
	checkAttrs(t, sp.Attributes(), map[string]any{"status": int64(200), "path": "/x"})
	if len(s.metrics) != 1 {
		t.Fatalf("metrics requests: %d", len(s.metrics))
	}
	got := s.metrics[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	if got.Len() != 3 {
		t.Fatalf("%d metrics", got.Len())
	}
	sum := got.At(0)
	if sum.Type() != pmetric.MetricTypeSum || !sum.Sum().IsMonotonic() || sum.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative ||
		sum.Sum().DataPoints().At(0).IntValue() != 7 || sum.Unit() != "{event}" {
		t.Errorf("sum %v", sum.Type())
	}
	checkAttrs(t, sum.Sum().DataPoints().At(0).Attributes(), map[string]any{"marker": "a"})
	h := got.At(1).Histogram().DataPoints().At(0)
	if got.At(1).Type() != pmetric.MetricTypeHistogram || h.Count() != 6 || h.Sum() != 30 || h.Min() != 1 || h.Max() != 9 ||
		h.ExplicitBounds().Len() != 2 || h.ExplicitBounds().At(1) != 4 || h.BucketCounts().Len() != 3 || h.BucketCounts().At(2) != 3 {
		t.Errorf("histogram count %d sum %v bounds %v counts %v", h.Count(), h.Sum(), h.ExplicitBounds().AsRaw(), h.BucketCounts().AsRaw())
	}
	x := got.At(2).ExponentialHistogram().DataPoints().At(0)
	if got.At(2).Type() != pmetric.MetricTypeExponentialHistogram || x.Count() != 5 || x.Scale() != 0 || x.ZeroCount() != 1 ||
		x.Positive().Offset() != -1 || x.Positive().BucketCounts().Len() != 4 || x.Positive().BucketCounts().At(2) != 2 || x.Max() != 15 {
		t.Errorf("exponential histogram count %d scale %d zero %d offset %d counts %v", x.Count(), x.Scale(), x.ZeroCount(), x.Positive().Offset(), x.Positive().BucketCounts().AsRaw())
	}
}

// stream sends n events with sequence numbers from a goroutine, calling
// at(i) before event i (for the test to break the collector mid-stream).
func stream(e *otlp.Exporter, n int, at func(i int)) {
	c := class
	for i := range n {
		if at != nil {
			at(i)
		}
		e.Log(&c, int64(i), values(uint64(i)), 0)
	}
}

// accounted checks that every event is either received or counted as
// lost: sent == unique received + lost, and reports duplicates (delivery
// is at least once).
func accounted(t *testing.T, s *sink, e *otlp.Exporter, n int) (received, dups int) {
	t.Helper()
	seen := make(map[int64]int)
	for _, r := range s.logRecords() {
		v, _ := r.rec.Attributes().Get("seq")
		seen[v.Int()]++
	}
	for _, k := range seen {
		if k > 1 {
			dups += k - 1
		}
	}
	st := e.Stats()
	if st.Events != uint64(n) {
		t.Errorf("exporter counted %d events, sent %d", st.Events, n)
	}
	if uint64(len(seen))+st.Lost() != uint64(n) {
		t.Errorf("sent %d, received %d distinct, lost %d (%+v): %d unaccounted for",
			n, len(seen), st.Lost(), st, int64(n)-int64(len(seen))-int64(st.Lost()))
	}
	return len(seen), dups
}

// The collector starts after the exporter: nothing is lost, events wait
// in the queue.
func TestCollectorStartsLate(t *testing.T) {
	addr := freeAddr(t)
	e := newExporter(t, "http://"+addr, otlp.WithBatch(100, 0, 0))
	const n = 2000
	stream(e, n, nil)
	e.Flush()
	for e.Stats().Retries < 2 {
		time.Sleep(time.Millisecond) // polling for a condition: the exporter has failed to connect
	}
	s := &sink{}
	startCollector(t, addr, s)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, dups := accounted(t, s, e, n)
	if got != n || dups != 0 {
		t.Errorf("received %d (%d duplicates), want all %d", got, dups, n)
	}
}

// The collector answers 503 for a while (its pipeline refuses the data):
// the exporter retries and loses nothing.
func TestCollector503(t *testing.T) {
	var mu sync.Mutex
	refusals := 5
	s := &sink{refuse: func() bool {
		mu.Lock()
		defer mu.Unlock()
		refusals--
		return refusals >= 0
	}}
	col := startCollector(t, freeAddr(t), s)
	e := newExporter(t, col.url(), otlp.WithBatch(100, 0, 0))
	const n = 2000
	stream(e, n, nil)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, dups := accounted(t, s, e, n)
	if got != n || dups != 0 {
		t.Errorf("received %d (%d duplicates), want all %d", got, dups, n)
	}
	if s.refused != 5 || e.Stats().Retries < 5 {
		t.Errorf("refused %d, retries %d: the test did not test retries", s.refused, e.Stats().Retries)
	}
}

// The collector is killed mid-stream and restarted; with a small queue
// some events are dropped, and every one of them is counted, and the
// count reaches the collector as a metric.
func TestCollectorKilledAndRestarted(t *testing.T) {
	addr := freeAddr(t)
	s := &sink{}
	col := startCollector(t, addr, s)
	e := newExporter(t, col.url(), otlp.WithBatch(50, 0, time.Millisecond), otlp.WithQueueSize(500))
	const n = 20000
	// While the collector is up, the stream keeps to the collector's
	// pace (the queue never overflows); while it is down (events 5000
	// to 15000), events come as fast as they can and overflow the queue.
	paced := func() {
		for e.Stats().Queued >= 400 {
			runtime.Gosched() // waiting for a condition
		}
	}
	stream(e, n, func(i int) {
		switch {
		case i == 5000:
			col.shutdown()
		case i == 15000:
			startCollector(t, addr, s)
		case i < 5000 || i > 15000:
			paced()
		}
	})
	if err := e.Close(context.Background()); err != nil {
		t.Logf("Close: %v", err)
	}
	got, dups := accounted(t, s, e, n)
	st := e.Stats()
	t.Logf("sent %d, received %d distinct (%d duplicates), dropped %d, retries %d", n, got, dups, st.Dropped, st.Retries)
	if st.Dropped == 0 || st.Dropped > 10000 {
		t.Errorf("dropped %d: want drops only while the collector was down, and some", st.Dropped)
	}
	if got < 10000 {
		t.Errorf("received %d: the events sent while the collector was up must arrive", got)
	}
	// The exporter reported its drops to the collector once it was back.
	var reported int64 = -1
	s.mu.Lock()
	for _, md := range s.metrics {
		rm := md.ResourceMetrics()
		for i := range rm.Len() {
			sms := rm.At(i).ScopeMetrics()
			for j := range sms.Len() {
				ms := sms.At(j).Metrics()
				for k := range ms.Len() {
					if ms.At(k).Name() != otlp.MetricDropped {
						continue
					}
					dps := ms.At(k).Sum().DataPoints()
					for d := range dps.Len() {
						if r, _ := dps.At(d).Attributes().Get("reason"); r.Str() == "queue_full" {
							reported = dps.At(d).IntValue()
						}
					}
				}
			}
		}
	}
	s.mu.Unlock()
	if reported != int64(st.Dropped) {
		t.Errorf("the collector was told of %d dropped events, the exporter dropped %d", reported, st.Dropped)
	}
}
