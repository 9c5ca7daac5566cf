package otlpenv_test

import (
	"cmp"
	"context"
	"errors"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/export/otlp/otlpenv"
	"github.com/tracemark/tracemark/internal/otlptest"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

var (
	jobDone = marker.Define3("envtest:job_done", marker.String("job"), marker.Int("items"), marker.Duration("took"),
		marker.SpanDuration("took"))
	unrelated = marker.Define1("envother:tick", marker.Int("n"))
)

func TestNotConfigured(t *testing.T) {
	t.Setenv("TRACEMARK_ENABLE", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	if x, err := otlpenv.StartFromEnv(); x != nil || err != nil {
		t.Errorf("without TRACEMARK_ENABLE: %v %v", x, err)
	}
	t.Setenv("TRACEMARK_ENABLE", "envtest:*")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	if x, err := otlpenv.StartFromEnv(); x != nil || err != nil {
		t.Errorf("without an endpoint: %v %v", x, err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")
	if _, err := otlpenv.StartFromEnv(); err == nil {
		t.Error("a bad endpoint is not an error")
	}
	var x *otlpenv.Export
	if err := x.Close(context.Background()); err != nil {
		t.Errorf("Close on nil: %v", err)
	}
}

// clockSlack is how far an event's time may be from time.Now's around
// it: the session's clock counts from its origin by the TSC, and agrees
// with the wall clock to its calibration's error, not to the ns (150 µs
// and more were seen under the race detector on a loaded machine). An
// event time left unmapped would be off by decades.
const clockSlack = int64(50 * time.Millisecond)

func TestExportsWhatTheProgramRecords(t *testing.T) {
	col := otlptest.NewReceiver(t)
	t.Setenv("TRACEMARK_ENABLE", "envtest:*")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL())
	t.Setenv("OTEL_SERVICE_NAME", "batch")
	x, err := otlpenv.StartFromEnv()
	if err != nil || x == nil {
		t.Fatalf("StartFromEnv: %v %v", x, err)
	}
	const n = 1000
	before := time.Now().UnixNano()
	for i := range n {
		jobDone.Fire("resize", i, time.Duration(i)*time.Microsecond)
		unrelated.Fire(i)
	}
	if err := x.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs, spans := col.Logs(), col.Spans()
	if len(logs) != n || len(spans) != n {
		t.Fatalf("received %d events and %d spans, want %d of each (stats %+v)", len(logs), len(spans), n, x.Stats().Exporter)
	}
	// Batches go out on several senders: they may arrive in any order.
	slices.SortFunc(logs, func(a, b otlptest.Record) int { return cmp.Compare(a.Attrs["items"].(int64), b.Attrs["items"].(int64)) })
	for i, l := range logs {
		if l.Name != "envtest:job_done" || l.Attrs["items"] != int64(i) || l.Attrs["took"] != int64(i)*1000 || l.Attrs["job"] != "resize" {
			t.Fatalf("event %d: %+v", i, l)
		}
		if int64(l.Time) < before-clockSlack || int64(l.Time) > time.Now().UnixNano()+clockSlack {
			t.Fatalf("event %d: time %d is not wall-clock time during the test (%d ns after its start, %d ns before now)", i, l.Time, int64(l.Time)-before, time.Now().UnixNano()-int64(l.Time))
		}
	}
	l := logs[0]
	if l.Resource["service.name"] != "batch" || l.Resource["process.pid"] != int64(os.Getpid()) || l.Scope != "github.com/tracemark/tracemark" {
		t.Errorf("resource %v scope %q", l.Resource, l.Scope)
	}
	longest := slices.MaxFunc(spans, func(a, b otlptest.Record) int { return cmp.Compare(a.End-a.Time, b.End-b.Time) })
	if d := longest.End - longest.Time; d != uint64(n-1)*1000 {
		t.Errorf("the longest span lasted %d ns, want %d", d, (n-1)*1000)
	}
	st := x.Stats()
	if st.Session.Delivered != n || st.Exporter.Exported != 2*n {
		t.Errorf("stats %+v", st)
	}
}

// An event that carries the program's trace context lands in that trace:
// the log record and the span get its trace id, the span its span id as
// parent.
var rpcDone = marker.Define4("envtest:rpc_done", marker.Int("status"), marker.Duration("latency"),
	marker.TraceID("trace_id"), marker.SpanID("span_id"), marker.SpanDuration("latency"))

func TestTraceContext(t *testing.T) {
	col := otlptest.NewReceiver(t)
	t.Setenv("TRACEMARK_ENABLE", "envtest:rpc_*")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL())
	x, err := otlpenv.StartFromEnv()
	if err != nil || x == nil {
		t.Fatalf("StartFromEnv: %v %v", x, err)
	}
	tid := [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	sid := [8]byte{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	rpcDone.Fire(200, time.Millisecond, tid, sid)
	if err := x.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs, spans := col.Logs(), col.Spans()
	if len(logs) != 1 || len(spans) != 1 {
		t.Fatalf("%d logs, %d spans", len(logs), len(spans))
	}
	if string(logs[0].TraceID) != string(tid[:]) || string(logs[0].SpanID) != string(sid[:]) {
		t.Errorf("log record trace %x span %x", logs[0].TraceID, logs[0].SpanID)
	}
	if _, ok := logs[0].Attrs["trace_id"]; ok {
		t.Error("the trace id is an attribute too")
	}
	if string(spans[0].TraceID) != string(tid[:]) || string(spans[0].ParentID) != string(sid[:]) || spans[0].End-spans[0].Time != 1e6 {
		t.Errorf("span %+v", spans[0])
	}
}

// TestFailedStartFreesTheBuffers checks that when StartFromEnv fails after
// creating its session (a bad pattern, a bad filter), the session's
// buffers are no longer charged to the recording memory budget, and the
// error names the variable at fault.
func TestFailedStartFreesTheBuffers(t *testing.T) {
	prev := session.SetMemoryBudget(1 << 30)
	t.Cleanup(func() { session.SetMemoryBudget(prev) })
	col := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL())
	for _, tc := range []struct{ enable, filter, want string }{
		{"envtest:[", "", session.EnvEnable},
		{"envtest:*", "items >", session.EnvFilter},
	} {
		t.Setenv(session.EnvEnable, tc.enable)
		t.Setenv(session.EnvFilter, tc.filter)
		_, before := session.MemoryBudget()
		x, err := otlpenv.StartFromEnv()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
			x.Close(context.Background())
			t.Fatalf("%s=%q %s=%q: %v, want an error naming %s", session.EnvEnable, tc.enable, session.EnvFilter, tc.filter, err, tc.want)
		}
		if _, after := session.MemoryBudget(); after != before {
			t.Errorf("%s=%q %s=%q: recording memory in use %d after the failed start, %d before", session.EnvEnable, tc.enable, session.EnvFilter, tc.filter, after, before)
		}
	}
}

// Close(context.Background()), as the package documentation shows it,
// returns when the collector is down: after the exporter's timeout, the
// events unsent counted as lost.
func TestCloseWithTheCollectorDown(t *testing.T) {
	t.Setenv("TRACEMARK_ENABLE", "envtest:*")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // nothing listens
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200")
	x, err := otlpenv.StartFromEnv()
	if err != nil || x == nil {
		t.Fatalf("StartFromEnv: %v %v", x, err)
	}
	jobDone.Fire("resize", 1, time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- x.Close(context.Background()) }()
	select {
	case err := <-closed:
		if !errors.Is(err, otlp.ErrIncomplete) {
			t.Errorf("Close: %v, want ErrIncomplete", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close(context.Background()) still waits for a collector that is down")
	}
	if st := x.Stats().Exporter; st.Exported != 0 || st.Lost() != st.Events || st.Events != 2 {
		t.Errorf("stats %+v: want the event and its span lost", st)
	}
}

// Events of markers that make no spans, whose records are encoded from
// their bytes, arrive with every field, type and timestamp exact: numbers
// of every kind, short and long strings, bytes, a trace id, and a string
// longer than the session keeps, cut and said so.
var (
	envNumbers = marker.Define6("envplain:numbers", marker.Int8("i8"), marker.Uint16("u16"), marker.Int64("i64"),
		marker.Uint64("u64"), marker.Float32("f32"), marker.Bool("ok"))
	envText = marker.Define4("envplain:text", marker.Int("i"), marker.String("s"), marker.Bytes("b"), marker.TraceID("trace_id"))
)

func TestPlainEventsExact(t *testing.T) {
	col := otlptest.NewReceiver(t)
	t.Setenv("TRACEMARK_ENABLE", "envplain:*")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL())
	x, err := otlpenv.StartFromEnv()
	if err != nil || x == nil {
		t.Fatalf("StartFromEnv: %v %v", x, err)
	}
	const n = 3000
	long := strings.Repeat("x", 5000)
	tid := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	text := func(i int) string {
		if i%100 == 0 {
			return long
		}
		return "s" + strings.Repeat("é", i%9)
	}
	before := time.Now().UnixNano()
	for i := range n {
		envNumbers.Fire(int8(i), uint16(i), -int64(i)<<40, uint64(i)<<62, float32(i)/4, i%3 == 0)
		envText.Fire(i, text(i), []byte{byte(i), 0, byte(i >> 8)}, tid)
	}
	if err := x.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixNano()
	logs := col.Logs()
	if len(logs) != 2*n {
		t.Fatalf("received %d events, want %d (stats %+v)", len(logs), 2*n, x.Stats().Exporter)
	}
	numbers, texts := map[int64]otlptest.Record{}, map[int64]otlptest.Record{}
	for _, l := range logs {
		if int64(l.Time) < before-clockSlack || int64(l.Time) > after+clockSlack || int64(l.Observed) < before || int64(l.Observed) > after {
			t.Fatalf("%s: time %d observed %d, not within the test [%d, %d]", l.Name, l.Time, l.Observed, before, after)
		}
		switch l.Name {
		case "envplain:numbers":
			numbers[l.Attrs["u16"].(int64)] = l
		case "envplain:text":
			texts[l.Attrs["i"].(int64)] = l
		}
	}
	for i := range n {
		u64 := any(int64(uint64(i) << 62))
		if uint64(i)<<62 > math.MaxInt64 {
			u64 = strconv.FormatUint(uint64(i)<<62, 10) // as text, as OTLP has no unsigned 64-bit int
		}
		want := map[string]any{"i8": int64(int8(i)), "u16": int64(i), "i64": -int64(i) << 40, "u64": u64,
			"f32": float64(float32(i) / 4), "ok": i%3 == 0}
		if got := numbers[int64(i)].Attrs; !reflect.DeepEqual(got, want) {
			t.Fatalf("numbers %d: %v, want %v", i, got, want)
		}
		l := texts[int64(i)]
		s := text(i)
		want = map[string]any{"i": int64(i), "s": s, "b": []byte{byte(i), 0, byte(i >> 8)}}
		if len(s) > 1024 {
			want["s"] = s[:1024]
			want["tracemark.truncated"] = []any{"s"}
		}
		if !reflect.DeepEqual(l.Attrs, want) || string(l.TraceID) != string(tid[:]) {
			t.Fatalf("text %d: %v trace %x, want %v", i, l.Attrs, l.TraceID, want)
		}
	}
	if st := x.Stats(); st.Session.Delivered != 2*n || st.Exporter.Exported != 2*n {
		t.Errorf("stats %+v", st)
	}
}
