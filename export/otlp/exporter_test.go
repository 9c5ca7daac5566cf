package otlp

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/otlptest"
)

// testClass has a field of every kind the exporter distinguishes.
var testClass = Class{
	Name: "http:request_done",
	Fields: []Field{
		{"method", "string"}, {"status", "int64"}, {"bytes", "uint32"}, {"big", "uint64"},
		{"ratio", "float64"}, {"ok", "bool"}, {"latency", "duration"}, {"body", "bytes"},
	},
	Scope: Scope{Name: "example.com/demo", Version: "v1.2.3"},
}

func testValues(i int) []ctf.Value {
	return []ctf.Value{
		ctf.StringValue("GET"), ctf.IntValue(-int64(i)), ctf.UintValue(uint64(i)), ctf.UintValue(math.MaxUint64),
		ctf.FloatValue(0.5), ctf.UintValue(1), ctf.IntValue(int64(1500 * time.Microsecond)), ctf.BytesValue([]byte{0xde, 0xad}),
	}
}

func newTestExporter(t *testing.T, r *otlptest.Receiver, opts ...Option) *Exporter {
	t.Helper()
	// The test's options come last: they override these.
	base := []Option{
		WithHTTPClient(r.Server.Client()),
		WithRetry(time.Millisecond, 10*time.Millisecond),
		WithResource(Attribute{"service.name", "demo"}, Attribute{"process.pid", int64(42)}),
	}
	e, err := New(r.URL(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func TestLogRecordMapping(t *testing.T) {
	for _, comp := range []string{CompressionNone, CompressionGzip} {
		t.Run(comp, func(t *testing.T) {
			r := otlptest.NewReceiver(t)
			e := newTestExporter(t, r, WithCompression(comp), WithHeaders(map[string]string{"X-Tenant": "a b"}))
			c := testClass
			other := Class{Name: "db:query", Fields: []Field{{"q", "string"}}, Scope: Scope{Name: "example.com/db"}}
			const n = 3
			for i := range n {
				if !e.Log(&c, int64(1e18)+int64(i), testValues(i), 0) {
					t.Fatal("event dropped")
				}
			}
			cut := testValues(7)
			if !e.Log(&c, 5, cut, 1<<0|1<<7) {
				t.Fatal("event dropped")
			}
			e.Log(&other, 6, []ctf.Value{ctf.StringValue("select 1")}, 0)
			if err := e.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			logs := r.Logs()
			if len(logs) != n+2 {
				t.Fatalf("received %d log records, want %d", len(logs), n+2)
			}
			for i := range n {
				l := logs[i]
				if l.Name != "http:request_done" || l.Time != uint64(1e18)+uint64(i) || l.Observed == 0 {
					t.Errorf("record %d: name %q time %d observed %d", i, l.Name, l.Time, l.Observed)
				}
				if (Scope{l.Scope, l.ScopeVersion}) != c.Scope {
					t.Errorf("record %d: scope %+v", i, l.Scope)
				}
				want := map[string]any{
					"method": "GET", "status": -int64(i), "bytes": int64(i), "big": "18446744073709551615",
					"ratio": 0.5, "ok": true, "latency": int64(1500000), "body": []byte{0xde, 0xad},
				}
				if !reflect.DeepEqual(l.Attrs, want) {
					t.Errorf("record %d attributes:\n got %#v\nwant %#v", i, l.Attrs, want)
				}
				if !reflect.DeepEqual(l.Resource, map[string]any{"service.name": "demo", "process.pid": int64(42)}) {
					t.Errorf("resource %#v", l.Resource)
				}
			}
			if got := logs[n].Attrs[truncatedKey]; !reflect.DeepEqual(got, []any{"method", "body"}) {
				t.Errorf("truncated fields: %#v", got)
			}
			if logs[n+1].Scope != "example.com/db" || logs[n+1].Attrs["q"] != "select 1" {
				t.Errorf("second scope: %+v", logs[n+1])
			}
			if comp == CompressionGzip && r.Gzipped() == 0 {
				t.Error("nothing arrived gzipped")
			}
			if comp == CompressionNone && r.Gzipped() != 0 {
				t.Error("compressed without being asked to")
			}
			if h := r.Headers()[0]; h.Get("X-Tenant") != "a b" || h.Get("Content-Type") != "application/x-protobuf" {
				t.Errorf("headers %v", h)
			}
		})
	}
}

func TestTraceIDsFromFields(t *testing.T) {
	r := otlptest.NewReceiver(t)
	e := newTestExporter(t, r)
	c := Class{Name: "job:done", Fields: []Field{{"trace", "trace_id"}, {"span", "span_id"}, {"n", "int64"}}}
	tid := bytes.Repeat([]byte{0xab}, 16)
	sid := bytes.Repeat([]byte{0xcd}, 8)
	e.Log(&c, 1, []ctf.Value{ctf.BytesValue(tid), ctf.BytesValue(sid), ctf.IntValue(3)}, 0)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs := r.Logs()
	if len(logs) != 1 || !bytes.Equal(logs[0].TraceID, tid) || !bytes.Equal(logs[0].SpanID, sid) {
		t.Fatalf("got %+v", logs)
	}
	if !reflect.DeepEqual(logs[0].Attrs, map[string]any{"n": int64(3)}) {
		t.Errorf("ids must not be attributes too: %#v", logs[0].Attrs)
	}
}

func TestSpans(t *testing.T) {
	r := otlptest.NewReceiver(t)
	e := newTestExporter(t, r)
	s := SpanData{
		Name: "GET /items", Scope: Scope{Name: "m"}, TraceID: [16]byte{1}, SpanID: [8]byte{2}, ParentSpanID: [8]byte{3},
		StartNS: 100, EndNS: 250, Attributes: []Attribute{{"status", int64(200)}},
	}
	e.Span(&s)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := r.Spans()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	g := spans[0]
	if g.Name != s.Name || g.Time != 100 || g.End != 250 || g.TraceID[0] != 1 || g.SpanID[0] != 2 || g.ParentID[0] != 3 || g.Attrs["status"] != int64(200) {
		t.Errorf("span %+v", g)
	}
}

func TestBatchBySize(t *testing.T) {
	r := otlptest.NewReceiver(t)
	e := newTestExporter(t, r, WithBatch(10, 0, time.Hour))
	c := testClass
	for i := range 25 {
		e.Log(&c, int64(i), testValues(i), 0)
	}
	// Two full batches go without waiting for BatchDelay; Close sends
	// the last five.
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Requests != 3 || st.Exported != 25 {
		t.Errorf("stats %+v, want 3 requests for 25 events", st)
	}
}

func TestBatchByTime(t *testing.T) {
	r := otlptest.NewReceiver(t)
	arrived := make(chan struct{}, 1)
	r.Answer(func(string, int) (int, map[string]string, []byte) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		return 0, nil, nil
	})
	e := newTestExporter(t, r, WithBatch(1000, 0, 10*time.Millisecond))
	c := testClass
	e.Log(&c, 1, testValues(1), 0)
	<-arrived // sent by the timer: no Close, no Flush
	if st := e.Stats(); st.Events != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestRetryAfter503And429(t *testing.T) {
	r := otlptest.NewReceiver(t)
	var calls atomic.Int32
	r.Answer(func(path string, n int) (int, map[string]string, []byte) {
		switch calls.Add(1) {
		case 1:
			return 503, map[string]string{"Retry-After": "0"}, nil
		case 2:
			return 429, nil, nil
		case 3:
			return 502, nil, nil
		}
		return 0, nil, nil
	})
	e := newTestExporter(t, r)
	c := testClass
	for i := range 5 {
		e.Log(&c, int64(i), testValues(i), 0)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	if st.Retries != 3 || st.Exported != 5 || st.Lost() != 0 {
		t.Errorf("stats %+v, want 3 retries and 5 exported", st)
	}
	logs := r.Logs()
	if len(logs) != 5 {
		t.Errorf("received %d, want 5 (no duplicates)", len(logs))
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	if d := parseRetryAfter("3"); d != 3*time.Second {
		t.Errorf("Retry-After: 3 -> %v", d)
	}
	if d := parseRetryAfter(time.Now().Add(time.Hour).UTC().Format(http1123)); d < 59*time.Minute {
		t.Errorf("Retry-After as a date -> %v", d)
	}
	if d := parseRetryAfter("soon"); d != 0 {
		t.Errorf("bad Retry-After -> %v", d)
	}
	// A long Retry-After holds the batch back: Close with a deadline
	// gives up and counts the events as failed.
	r := otlptest.NewReceiver(t)
	r.Answer(func(string, int) (int, map[string]string, []byte) {
		return 503, map[string]string{"Retry-After": "3600"}, nil
	})
	e := newTestExporter(t, r)
	c := testClass
	e.Log(&c, 1, testValues(1), 0)
	e.Flush()
	for e.Stats().Requests == 0 {
		time.Sleep(time.Millisecond) // polling for a condition, not timing
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := e.Close(ctx)
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Close: %v", err)
	}
	if st := e.Stats(); st.Failed != 1 || st.Requests != 1 {
		t.Errorf("stats %+v: want one request, then waiting for an hour, given up", st)
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestRejected(t *testing.T) {
	r := otlptest.NewReceiver(t)
	// A google.rpc.Status with message "bad data".
	status := appendBytesField(appendUintField(nil, 1, 3), 2, "bad data")
	r.Answer(func(path string, n int) (int, map[string]string, []byte) {
		if path == "/v1/logs" {
			return 400, map[string]string{"Content-Type": "application/x-protobuf"}, status
		}
		return 0, nil, nil
	})
	e := newTestExporter(t, r)
	c := testClass
	for i := range 4 {
		e.Log(&c, int64(i), testValues(i), 0)
	}
	err := e.Close(context.Background())
	if !errors.Is(err, ErrIncomplete) || !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "400 Bad Request: bad data") {
		t.Fatalf("Close: %v", err)
	}
	var herr *HTTPError
	if !errors.As(e.Err(), &herr) || herr.StatusCode != 400 {
		t.Errorf("Err: %v", e.Err())
	}
	if st := e.Stats(); st.Rejected != 4 || st.Retries != 0 || st.Requests < 1 {
		t.Errorf("stats %+v: a 400 is not retried", st)
	}
}

func TestPartialSuccess(t *testing.T) {
	r := otlptest.NewReceiver(t)
	ps := appendBytesField(nil, 1, appendBytesField(appendUintField(nil, 1, 2), 2, "two too old"))
	r.Answer(func(path string, n int) (int, map[string]string, []byte) {
		if path == "/v1/logs" {
			return 200, nil, ps
		}
		return 0, nil, nil
	})
	e := newTestExporter(t, r)
	c := testClass
	for i := range 5 {
		e.Log(&c, int64(i), testValues(i), 0)
	}
	e.Close(context.Background())
	if st := e.Stats(); st.Rejected != 2 || st.Exported != 3 {
		t.Errorf("stats %+v", st)
	}
}

// A partial success that rejects more records than the request held
// counts the request's records as rejected, no more.
func TestPartialSuccessOverstated(t *testing.T) {
	r := otlptest.NewReceiver(t)
	ps := appendBytesField(nil, 1, appendUintField(nil, 1, 5))
	r.Answer(func(path string, n int) (int, map[string]string, []byte) { return 200, nil, ps })
	e := newTestExporter(t, r)
	c := testClass
	e.Log(&c, 1, testValues(1), 0)
	e.Close(context.Background())
	if st := e.Stats(); st.Rejected != 1 || st.Exported != 0 || st.Events != 1 {
		t.Errorf("stats %+v, want the one event rejected", st)
	}
}

// When the collector does not answer, events wait in the queue; once it
// is full they are dropped and counted, and the count reaches the
// collector as a metric when it is back, compressed if the events are.
func TestQueueFullDropsAndReports(t *testing.T) {
	for _, comp := range []string{CompressionNone, CompressionGzip} {
		t.Run(comp, func(t *testing.T) {
			r := otlptest.NewReceiver(t)
			release := make(chan struct{})
			blocked := make(chan struct{}, 1)
			r.Answer(func(path string, n int) (int, map[string]string, []byte) {
				if path == "/v1/logs" {
					select {
					case blocked <- struct{}{}:
					default:
					}
					<-release
				}
				return 0, nil, nil
			})
			e := newTestExporter(t, r, WithBatch(10, 0, time.Hour), WithQueueSize(30), WithCompression(comp))
			c := testClass
			for i := range 10 {
				e.Log(&c, int64(i), testValues(i), 0)
			}
			<-blocked // the first batch is being sent and hangs
			accepted := 0
			for i := range 100 {
				if e.Log(&c, int64(i), testValues(i), 0) {
					accepted++
				}
			}
			if accepted != 20 {
				t.Errorf("accepted %d events with a queue of 30 and 10 in flight, want 20", accepted)
			}
			if st := e.Stats(); st.Dropped != 80 || st.Queued != 30 {
				t.Errorf("stats %+v", st)
			}
			close(release)
			if err := e.Close(context.Background()); !errors.Is(err, ErrIncomplete) {
				t.Errorf("Close: %v", err)
			}
			st := e.Stats()
			if st.Events != 110 || st.Exported != 30 || st.Dropped != 80 || st.Exported+st.Lost() != st.Events {
				t.Errorf("stats %+v", st)
			}
			logs, metrics := r.Logs(), r.Metrics()
			if len(logs) != 30 {
				t.Errorf("received %d, want 30", len(logs))
			}
			if len(metrics) == 0 {
				t.Fatal("no dropped-events metric")
			}
			if !bytes.Contains(metrics[len(metrics)-1], []byte(MetricDropped)) || !bytes.Contains(metrics[len(metrics)-1], []byte("queue_full")) {
				t.Errorf("metric does not name the drops")
			}
			if v := otlptest.SumValue(metrics[len(metrics)-1], MetricDropped, "reason", "queue_full"); v != 80 {
				t.Errorf("dropped metric says %d, want 80", v)
			}
			// Compressed, the metrics are too, as every request.
			for _, h := range r.Headers() {
				if got := h.Get("Content-Encoding"); (comp == CompressionGzip) != (got == "gzip") {
					t.Errorf("with compression %s, a request had Content-Encoding %q", comp, got)
				}
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	// Nothing listens: the exporter retries until Close gives up.
	e, err := New("http://127.0.0.1:1", WithRetry(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c := testClass
	e.Log(&c, 1, testValues(1), 0)
	e.Flush()
	for e.Stats().Retries < 3 {
		time.Sleep(time.Millisecond) // polling for a condition
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Close(ctx); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Close: %v", err)
	}
	if st := e.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v", st)
	}
	if e.Log(&c, 1, testValues(1), 0) {
		t.Error("Log after Close accepted an event")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		endpoint string
		opts     []Option
	}{{"localhost:4318", nil}, {"ftp://x", nil}, {"", []Option{WithCompression("zstd")}}} {
		if _, err := New(c.endpoint, c.opts...); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%q, %d options): %v", c.endpoint, len(c.opts), err)
		}
	}
}

func TestBlockWaitsForRoom(t *testing.T) {
	r := otlptest.NewReceiver(t)
	release := make(chan struct{})
	r.Answer(func(path string, n int) (int, map[string]string, []byte) {
		<-release
		return 0, nil, nil
	})
	e := newTestExporter(t, r, WithBatch(10, 0, time.Hour), WithQueueSize(20), WithBlock())
	c := testClass
	done := make(chan struct{})
	go func() {
		for i := range 100 {
			e.Log(&c, int64(i), testValues(i), 0)
		}
		close(done)
	}()
	for e.Stats().Queued < 20 {
		time.Sleep(time.Millisecond) // polling for a condition
	}
	select {
	case <-done:
		t.Fatal("Log did not wait for room")
	default:
	}
	close(release)
	<-done
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Exported != 100 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// ExportMetrics compresses as the event exports do, and the collector
// reads the same metric out of the compressed body.
func TestExportMetricsCompressed(t *testing.T) {
	r := otlptest.NewReceiver(t)
	e := newTestExporter(t, r, WithCompression(CompressionGzip))
	m := Metric{Name: "m.count", Sum: &Sum{Monotonic: true, Points: []NumberPoint{{Attributes: []Attribute{{"k", "v"}}, Value: 7}}}}
	if err := e.ExportMetrics(t.Context(), []Metric{m}); err != nil {
		t.Fatal(err)
	}
	ms, hs := r.Metrics(), r.Headers()
	if len(ms) != 1 || len(hs) != 1 {
		t.Fatalf("%d metrics requests, %d requests in all; want 1", len(ms), len(hs))
	}
	if got := hs[0].Get("Content-Encoding"); got != "gzip" {
		t.Errorf("Content-Encoding %q, want gzip", got)
	}
	if v := otlptest.SumValue(ms[0], "m.count", "k", "v"); v != 7 {
		t.Errorf("the collector read %d, want 7", v)
	}
}

// The back-off between retries is jittered, within [d/2, d].
func TestJittered(t *testing.T) {
	const d = time.Second
	seen := map[time.Duration]bool{}
	for range 100 {
		w := jittered(d)
		if w < d/2 || w > d {
			t.Fatalf("jittered(%v) = %v, want within [%v, %v]", d, w, d/2, d)
		}
		seen[w] = true
	}
	if len(seen) < 50 {
		t.Errorf("100 waits took %d values: not random", len(seen))
	}
}
