package otlp

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/otlptest"
)

func TestSpanFromDuration(t *testing.T) {
	r := otlptest.NewReceiver(t)
	e := newTestExporter(t, r)
	c := Class{Name: "storage:query", Fields: []Field{{"op", "string"}, {"latency", "duration"}},
		Scope: Scope{Name: "m"}, Span: &SpanRule{Duration: "latency"}}
	e.Log(&c, 10_000, []ctf.Value{ctf.StringValue("get"), ctf.IntValue(int64(3 * time.Microsecond))}, 0)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans, logs := r.Spans(), r.Logs()
	if len(spans) != 1 || len(logs) != 1 {
		t.Fatalf("%d spans, %d logs", len(spans), len(logs))
	}
	s := spans[0]
	if s.Name != "storage:query" || s.Time != 7000 || s.End != 10_000 || s.Scope != "m" || len(s.TraceID) != 16 || len(s.SpanID) != 8 {
		t.Errorf("span %+v", s)
	}
	if !reflect.DeepEqual(s.Attrs, map[string]any{"op": "get", "latency": int64(3000)}) {
		t.Errorf("attributes %v", s.Attrs)
	}
}

func TestSpanPairs(t *testing.T) {
	r := otlptest.NewReceiver(t)
	e := newTestExporter(t, r)
	start := Class{Name: "batch:job_start", Fields: []Field{{"job", "string"}, {"items", "int64"}}, StartKeys: []string{"job"}}
	end := Class{Name: "batch:job_done", Fields: []Field{{"job", "string"}, {"failed", "int64"}},
		Span: &SpanRule{Start: "batch:job_start", Keys: []string{"job"}}}
	s := ctf.StringValue
	// Two jobs overlap; they pair by name, not by order.
	e.Log(&start, 100, []ctf.Value{s("a"), ctf.IntValue(5)}, 0)
	e.Log(&start, 200, []ctf.Value{s("b"), ctf.IntValue(7)}, 0)
	e.Log(&end, 300, []ctf.Value{s("b"), ctf.IntValue(1)}, 0)
	e.Log(&end, 400, []ctf.Value{s("a"), ctf.IntValue(0)}, 0)
	e.Log(&end, 500, []ctf.Value{s("c"), ctf.IntValue(0)}, 0) // no start
	e.Log(&end, 600, []ctf.Value{s("a"), ctf.IntValue(0)}, 0) // its start was used
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := r.Spans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2: %+v", len(spans), spans)
	}
	b, a := spans[0], spans[1]
	if b.Name != "batch:job_done" || b.Time != 200 || b.End != 300 || !reflect.DeepEqual(b.Attrs, map[string]any{"job": "b", "failed": int64(1), "items": int64(7)}) {
		t.Errorf("span b %+v", b)
	}
	if a.Time != 100 || a.End != 400 || a.Attrs["items"] != int64(5) {
		t.Errorf("span a %+v", a)
	}
	if st := e.Stats(); st.Unpaired != 2 || len(r.Logs()) != 6 {
		t.Errorf("unpaired %d, logs %d", st.Unpaired, len(r.Logs()))
	}
}

func TestSpanTraceIDFromFields(t *testing.T) {
	r := otlptest.NewReceiver(t)
	e := newTestExporter(t, r)
	c := Class{Name: "rpc:done", Fields: []Field{{"tid", "trace_id"}, {"sid", "span_id"}, {"d", "duration"}}, Span: &SpanRule{Duration: "d"}}
	tid := []byte("0123456789abcdef")
	sid := []byte("parent!!")
	e.Log(&c, 50, []ctf.Value{ctf.BytesValue(tid), ctf.BytesValue(sid), ctf.IntValue(20)}, 0)
	e.Close(context.Background())
	spans := r.Spans()
	if len(spans) != 1 || string(spans[0].TraceID) != string(tid) || string(spans[0].ParentID) != string(sid) || string(spans[0].SpanID) == string(sid) {
		t.Fatalf("span %+v: want the program's trace, its span as parent", spans)
	}
}

// Float keys pair by value: 1.2 and 1.7 are two keys, not one.
func TestSpanPairsFloatKeys(t *testing.T) {
	r := otlptest.NewReceiver(t)
	e := newTestExporter(t, r)
	start := Class{Name: "calc:start", Fields: []Field{{"x", "double"}}, StartKeys: []string{"x"}}
	end := Class{Name: "calc:done", Fields: []Field{{"x", "double"}}, Span: &SpanRule{Start: "calc:start", Keys: []string{"x"}}}
	f := ctf.FloatValue
	e.Log(&start, 100, []ctf.Value{f(1.2)}, 0)
	e.Log(&start, 200, []ctf.Value{f(1.7)}, 0)
	e.Log(&end, 300, []ctf.Value{f(1.2)}, 0)
	e.Log(&end, 400, []ctf.Value{f(1.7)}, 0)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := r.Spans()
	if len(spans) != 2 || spans[0].Time != 100 || spans[0].End != 300 || spans[1].Time != 200 || spans[1].End != 400 {
		t.Fatalf("spans %+v: want 1.2 from 100 to 300 and 1.7 from 200 to 400", spans)
	}
}
