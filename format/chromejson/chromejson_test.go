package chromejson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/chromejson"
	"github.com/tracemark/tracemark/format/internal/tracetest"
)

func convert(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	tracetest.Write(t, dir)
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	w := chromejson.NewWriter(&out, r.Info(), r.Classes())
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// doc is a parsed output document; numbers are kept as json.Number.
type doc struct {
	TraceEvents []map[string]any `json:"traceEvents"`
	OtherData   map[string]any   `json:"otherData"`
}

// event is a trace event checked by parse.
type event struct {
	Name, Cat, Ph, S string
	TSNanos          int64 // ts converted exactly to nanoseconds
	PID, TID         int64
	Args             map[string]any
}

// parse parses out and checks it against the Trace Event Format rules
// that the Perfetto importer applies (json_trace_tokenizer.cc,
// json_trace_parser_impl.cc): a JSON object whose traceEvents member is an
// array of objects with a one-letter "ph"; "M" events named process_name,
// process_labels or thread_name with the name in args; instant events
// with a numeric "ts" in microseconds, "s":"t", numeric pid and a non-zero
// numeric tid (tid 0 would be taken as the pid), and an args object. It
// returns the instant events and the track names by tid.
func parse(t *testing.T, out []byte) (d doc, events []event, tracks map[int64]string) {
	t.Helper()
	if !bytes.HasPrefix(out, []byte(`{"traceEvents":[`)) {
		t.Fatalf("document starts with %.20q", out)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatal("data after the document")
	}
	tracks = map[int64]string{}
	var pid int64 = -1
	for i, e := range d.TraceEvents {
		str := func(k string) string {
			s, ok := e[k].(string)
			if !ok {
				t.Fatalf("event %d: %q is %T, want a string: %v", i, k, e[k], e)
			}
			return s
		}
		integer := func(k string) int64 {
			n, ok := e[k].(json.Number)
			if !ok {
				t.Fatalf("event %d: %q is %T, want a number: %v", i, k, e[k], e)
			}
			v, err := n.Int64()
			if err != nil {
				t.Fatalf("event %d: %q: %v", i, k, err)
			}
			return v
		}
		args, ok := e["args"].(map[string]any)
		if !ok {
			t.Fatalf("event %d has no args object: %v", i, e)
		}
		p := integer("pid")
		if pid != -1 && p != pid {
			t.Fatalf("event %d: pid %d, want %d", i, p, pid)
		}
		pid = p
		switch ph := str("ph"); ph {
		case "M":
			if _, ok := e["ts"]; ok {
				t.Errorf("metadata event %d has a ts", i)
			}
			switch name := str("name"); name {
			case "process_name":
				if _, ok := args["name"].(string); !ok {
					t.Errorf("process_name without a name: %v", e)
				}
			case "process_labels":
				if _, ok := args["labels"].(string); !ok {
					t.Errorf("process_labels without labels: %v", e)
				}
			case "thread_name":
				tid := integer("tid")
				name, ok := args["name"].(string)
				if !ok || tid == 0 {
					t.Errorf("bad thread_name event: %v", e)
				}
				if _, dup := tracks[tid]; dup {
					t.Errorf("thread %d named twice", tid)
				}
				tracks[tid] = name
			default:
				t.Errorf("unexpected metadata event %q", name)
			}
		case "i":
			ev := event{Name: str("name"), Cat: str("cat"), Ph: ph, S: str("s"), PID: p, TID: integer("tid"), Args: args}
			if ev.S != "t" || ev.TID == 0 {
				t.Errorf("event %d: scope %q tid %d", i, ev.S, ev.TID)
			}
			if _, ok := tracks[ev.TID]; !ok {
				t.Errorf("event %d on thread %d before its thread_name", i, ev.TID)
			}
			ts, ok := e["ts"].(json.Number)
			if !ok {
				t.Fatalf("event %d: ts %v is not a number", i, e["ts"])
			}
			ev.TSNanos = microsToNanos(t, string(ts))
			events = append(events, ev)
		default:
			t.Errorf("event %d: unexpected phase %q", i, ph)
		}
	}
	return d, events, tracks
}

// microsToNanos converts a ts value to nanoseconds, exactly, and checks
// that the Perfetto importer's float64 arithmetic gives the same result
// (it computes llround(ts * 1000.0) from a double).
func microsToNanos(t *testing.T, ts string) int64 {
	t.Helper()
	r, ok := new(big.Rat).SetString(ts)
	if !ok {
		t.Fatalf("ts %q is not a number", ts)
	}
	r.Mul(r, big.NewRat(1000, 1))
	if !r.IsInt() || !r.Num().IsInt64() {
		t.Fatalf("ts %q is not a whole number of nanoseconds", ts)
	}
	ns := r.Num().Int64()
	f, err := strconv.ParseFloat(ts, 64)
	if err != nil {
		t.Fatal(err)
	}
	if got := int64(math.Round(f * 1000)); got != ns {
		t.Errorf("ts %s read as a double gives %d ns, want %d", ts, got, ns)
	}
	if got := int64(math.Round(importerDouble(ts) * 1000)); got != ns {
		t.Errorf("ts %s read as the importer reads it gives %d ns, want %d", ts, got, ns)
	}
	return ns
}

// importerDouble computes a decimal number without exponent the way the
// Perfetto JSON importer does (json_parser.h, StringToDouble): the integer
// digits accumulated in a double, plus the fraction digits accumulated
// likewise and divided by the matching power of ten. It is less exact than
// strconv.ParseFloat.
func importerDouble(s string) float64 {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	ip, fp, _ := strings.Cut(s, ".")
	var v float64
	for _, c := range ip {
		v = v*10 + float64(c-'0')
	}
	var frac, div float64 = 0, 1
	for _, c := range fp {
		frac = frac*10 + float64(c-'0')
		div *= 10
	}
	if div > 1 {
		v += frac / div
	}
	if neg {
		v = -v
	}
	return v
}

func TestDocument(t *testing.T) {
	d, events, tracks := parse(t, convert(t))
	wantTracks := map[int64]string{1: "tracemark", 2: "floats", 3: "http", 4: "ints", 6: `odd "name" \ é`}
	if !reflect.DeepEqual(tracks, wantTracks) {
		t.Errorf("tracks %v, want %v", tracks, wantTracks)
	}
	if d.TraceEvents[0]["name"] != "process_name" || d.TraceEvents[0]["args"].(map[string]any)["name"] != "app" ||
		d.TraceEvents[0]["pid"] != json.Number("4242") {
		t.Errorf("first event %v, want the process name", d.TraceEvents[0])
	}
	if d.TraceEvents[1]["args"].(map[string]any)["labels"] != "host=testhost, trace=unit" {
		t.Errorf("second event %v, want the process labels", d.TraceEvents[1])
	}
	perTrack := map[string]int{}
	for _, e := range events {
		perTrack[tracks[e.TID]]++
	}
	if want := map[string]int{"tracemark": 2, "floats": 4, "http": 3, "ints": 4, `odd "name" \ é`: 1}; !reflect.DeepEqual(perTrack, want) {
		t.Errorf("events per track %v, want %v", perTrack, want)
	}
	n := func(s string) json.Number { return json.Number(s) }
	want := []struct {
		ts   int64
		name string
		args map[string]any
	}{
		{100, "ints:signed", map[string]any{"a": n("-128"), "b": n("-32768"), "c": n("-2147483648"), "d": n("-9223372036854775808")}},
		{110, "ints:signed", map[string]any{"a": n("127"), "b": n("32767"), "c": n("2147483647"), "d": n("9223372036854775807")}},
		{120, "ints:unsigned", map[string]any{"a": n("255"), "b": n("65535"), "c": n("4294967295"), "d": "18446744073709551615"}},
		{130, "lost 3 events on stream 5", map[string]any{"stream": n("5"), "cpu": n("5"), "lost_events": n("3"), "lost_packets": n("0"), "until": "2023-11-14T22:13:20.000000300Z"}},
		{130, "ints:unsigned", map[string]any{"a": n("0"), "b": n("1"), "c": n("2"), "d": n("3")}},
		{140, "floats", map[string]any{"x": n("0.1"), "y": n("-0.25")}},
		{150, "floats", map[string]any{"x": "Infinity", "y": "-Infinity"}},
		{160, "lost 12 events and 1 packet on stream 1", map[string]any{"stream": n("1"), "cpu": n("1"), "lost_events": n("12"), "lost_packets": n("1"), "until": "2023-11-14T22:13:20.000000250Z"}},
		{165, "floats", map[string]any{"x": "NaN", "y": n("1e+300")}},
		{170, "http:request", map[string]any{"method": "GET", "path": "/héllo/世界?q=\"x\"\\", "body": "0001ff", "status": n("200")}},
		{175, `odd "name" \ é`, map[string]any{"string": "tab\there\nnl\x01\ufffd\u2028", "event": "6869"}},
		{180, "http:request", map[string]any{"method": "", "path": "/ap", "body": "", "status": n("0"), "_truncated": []any{"path", "body"}}},
		{190, "http:empty", map[string]any{}},
		{200, "floats", map[string]any{"x": n("-0.0"), "y": n("2.0")}},
	}
	if len(events) != len(want) {
		t.Fatalf("%d instant events, want %d", len(events), len(want))
	}
	for i, w := range want {
		e := events[i]
		wantCat := strings.Split(w.name, ":")[0]
		if strings.HasPrefix(w.name, "lost ") {
			wantCat = "tracemark"
		}
		if e.TSNanos != w.ts || e.Name != w.name || e.Cat != wantCat || tracks[e.TID] != wantCat || !reflect.DeepEqual(e.Args, w.args) {
			t.Errorf("event %d: got  %d %q cat %q track %q %v\nwant %d %q cat %q %v", i, e.TSNanos, e.Name, e.Cat, tracks[e.TID], e.Args, w.ts, w.name, wantCat, w.args)
		}
	}
	other := d.OtherData
	if other["trace_start"] != "2023-11-14T22:13:20.000000000Z" || other["trace_start_ns"] != "1700000000000000000" ||
		other["env_hostname"] != "testhost" || other["events"] != json.Number("12") || other["lost_events"] != json.Number("15") {
		t.Errorf("otherData %v", other)
	}
}

// TestLongTraceTimestamps checks that timestamps stay exact to the
// nanosecond, also read as float64, far from the start of a trace.
func TestLongTraceTimestamps(t *testing.T) {
	class := &ctf.EventClass{Name: "a:b"}
	start := int64(1700000000_999999999)
	var out bytes.Buffer
	w := chromejson.NewWriter(&out, ctf.TraceInfo{}, nil)
	offsets := []int64{0, 1, 999, 1001, 86400e9 + 123, 5*86400e9 + 987654321, 10*86400e9 + 1}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		offsets = append(offsets, offsets[len(offsets)-1]+r.Int64N(1e9)) // up to 10 days + 10000 s
	}
	for range 10000 {
		offsets = append(offsets, offsets[len(offsets)-1]+r.Int64N(200e9)) // up to 33 days
	}
	for _, off := range offsets {
		if err := w.WriteEvent(&ctf.Event{Class: class, Time: start + off}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d, events, tracks := parse(t, out.Bytes())
	if d.TraceEvents[0]["args"].(map[string]any)["name"] != "trace" || d.TraceEvents[0]["pid"] != json.Number("1") {
		t.Errorf("process without environment: %v", d.TraceEvents[0])
	}
	if tracks[2] != "a" {
		t.Errorf("tracks %v", tracks)
	}
	base := start - start%1e9
	if d.OtherData["trace_start_ns"] != strconv.FormatInt(base, 10) {
		t.Errorf("trace_start_ns %v, want %d", d.OtherData["trace_start_ns"], base)
	}
	for i, e := range events {
		if want := start + offsets[i] - base; e.TSNanos != want {
			t.Errorf("event %d: ts %d ns, want %d", i, e.TSNanos, want)
		}
	}
}

func TestEmpty(t *testing.T) {
	var out bytes.Buffer
	w := chromejson.NewWriter(&out, tracetest.Info(), tracetest.Classes)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d, events, _ := parse(t, out.Bytes())
	if len(events) != 0 || len(d.TraceEvents) != 2 {
		t.Errorf("empty trace gives %v", d.TraceEvents)
	}
	if _, ok := d.OtherData["trace_start"]; ok {
		t.Errorf("trace_start without events")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.WriteEvent(&ctf.Event{Class: &ctf.EventClass{Name: "x"}}); !errors.Is(err, chromejson.ErrClosed) {
		t.Errorf("WriteEvent after Close: %v", err)
	}
}

func TestAppendValue(t *testing.T) {
	tests := []struct {
		v    ctf.Value
		bits int
		want string
	}{
		{ctf.IntValue(math.MinInt64), 64, "-9223372036854775808"},
		{ctf.UintValue(math.MaxInt64), 64, "9223372036854775807"},
		{ctf.UintValue(math.MaxInt64 + 1), 64, `"9223372036854775808"`},
		{ctf.FloatValue(float64(float32(3.14))), 32, "3.14"},
		{ctf.FloatValue(math.Inf(-1)), 64, `"-Infinity"`},
		{ctf.StringValue("a\"\n"), 0, `"a\"\n"`},
		{ctf.BytesValue([]byte{0xde, 0xad}), 0, `"dead"`},
		{ctf.Value{}, 0, "null"},
	}
	for _, tt := range tests {
		if got := string(chromejson.AppendValue(nil, tt.v, tt.bits)); got != tt.want {
			t.Errorf("AppendValue(%v) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

type failWriter struct{}

var errDisk = errors.New("disk full")

func (failWriter) Write(p []byte) (int, error) { return 0, errDisk }

func TestWriteErrorIsSticky(t *testing.T) {
	w := chromejson.NewWriter(failWriter{}, tracetest.Info(), nil)
	ev := &ctf.Event{Class: &tracetest.BenchClass, Fields: []ctf.Value{ctf.IntValue(1), ctf.IntValue(2), ctf.StringValue(strings.Repeat("x", 1000))}}
	var err error
	for i := 0; err == nil && i < 1000; i++ {
		err = w.WriteEvent(ev)
	}
	if !errors.Is(err, errDisk) || !errors.Is(w.Close(), errDisk) {
		t.Fatalf("WriteEvent error %v, want %v", err, errDisk)
	}
}

func TestNoAllocs(t *testing.T) {
	w := chromejson.NewWriter(discard{}, tracetest.Info(), tracetest.Classes)
	ev := &ctf.Event{Class: &tracetest.Classes[3], Time: 1700000000_000000000, Truncated: 2, Fields: []ctf.Value{
		ctf.StringValue("GET"), ctf.StringValue("/path"), ctf.BytesValue([]byte{1, 2}), ctf.UintValue(200)}}
	notice := &ctf.Event{Time: 1700000000_000000000, EndTime: 1700000001_000000000, Discarded: 3}
	w.WriteEvent(ev)
	w.WriteEvent(notice)
	allocs := testing.AllocsPerRun(1000, func() {
		ev.Time++
		w.WriteEvent(ev)
		w.WriteEvent(notice)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per event, want 0", allocs)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
