package chromejson_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/chromejson"
	"github.com/tracemark/tracemark/format/internal/encode"
	"github.com/tracemark/tracemark/format/internal/tracetest"
)

// convertSpans converts the span trace.
func convertSpans(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	tracetest.WriteSpans(t, dir)
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

// Declared spans are complete events ("ph":"X") with their duration,
// overlapping ones on threads of their own named after the provider;
// everything else stays an instant.
func TestSpanSlices(t *testing.T) {
	var doc struct {
		TraceEvents []struct {
			Name string          `json:"name"`
			Ph   string          `json:"ph"`
			TS   json.Number     `json:"ts"`
			Dur  json.Number     `json:"dur"`
			Tid  uint32          `json:"tid"`
			Args json.RawMessage `json:"args"`
		} `json:"traceEvents"`
	}
	out := convertSpans(t)
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	threads := map[uint32]string{}
	var got []string
	laneTid := map[string]map[int]uint32{}
	for _, e := range doc.TraceEvents {
		if e.Name == "thread_name" {
			var a struct{ Name string }
			_ = json.Unmarshal(e.Args, &a)
			threads[e.Tid] = a.Name
		}
		if e.Ph != "X" && e.Ph != "i" {
			continue
		}
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Name, e.Ph, e.TS, e.Dur))
	}
	var want []string
	for _, s := range jsonSlices() {
		if s.Dur == 0 {
			want = append(want, fmt.Sprintf("%s i %s ", s.Name, micros(s.TS)))
		} else {
			want = append(want, fmt.Sprintf("%s X %s %s", s.Name, micros(s.TS), micros(s.Dur)))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
	// The lanes: the tid of each slice, by its lane in the expectation.
	i := 0
	for _, e := range doc.TraceEvents {
		if e.Ph != "X" && e.Ph != "i" {
			continue
		}
		s := jsonSlices()[i]
		i++
		p := encode.Provider(s.Name)
		if threads[e.Tid] != p {
			t.Errorf("%s at %s on thread %d named %q, want %q", e.Name, e.TS, e.Tid, threads[e.Tid], p)
		}
		if laneTid[p] == nil {
			laneTid[p] = map[int]uint32{}
		}
		if tid, ok := laneTid[p][s.Lane]; ok && tid != e.Tid {
			t.Errorf("%s at %s: lane %d on threads %d and %d", e.Name, e.TS, s.Lane, tid, e.Tid)
		}
		laneTid[p][s.Lane] = e.Tid
	}
	for p, l := range laneTid {
		if len(l) != 2 || l[0] == l[1] {
			t.Errorf("provider %s: lanes %v, want two threads", p, l)
		}
	}
}

// jsonSlices are the slices of the span trace in chrome-json: only
// declared spans are slices, so db:ping (a latency field, no
// declaration) stays an instant at its time.
func jsonSlices() []tracetest.SpanSlice {
	out := slices.Clone(tracetest.SpanSlices)
	for i, s := range out {
		if s.Name == "db:ping" {
			out[i] = tracetest.SpanSlice{Name: s.Name, TS: s.TS + s.Dur}
		}
	}
	return out
}

// micros is ns as the document writes microseconds: trace_start is the
// whole second before the first event, cycle 0 of the trace.
func micros(ns int64) string { return string(encode.AppendMicros(nil, ns)) }

// TestSpanSlicesTraceProcessor reads the JSON with Perfetto's
// trace_processor (see package perfetto's tests): the slices have the
// durations of the spans, none nests, and nothing is reported invalid.
func TestSpanSlicesTraceProcessor(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIP: node not found; the trace_processor checks need it (run scripts/install-trace-processor)")
	}
	dir := os.Getenv("TRACEMARK_TRACE_PROCESSOR")
	if dir == "" {
		cache, _ := os.UserCacheDir()
		dir = filepath.Join(cache, "tracemark", "trace-processor-v55.3")
	}
	if _, err := os.Stat(filepath.Join(dir, "trace_processor.wasm")); err != nil {
		t.Skipf("SKIP: trace_processor.wasm not in %s: run scripts/install-trace-processor, or set TRACEMARK_TRACE_PROCESSOR", dir)
	}
	file := filepath.Join(t.TempDir(), "trace.json")
	if err := os.WriteFile(file, convertSpans(t), 0o644); err != nil {
		t.Fatal(err)
	}
	q, _ := json.Marshal(map[string]string{
		"slices": `select s.ts, s.dur, s.name, s.depth, t.name as track from slice s join thread_track t on s.track_id = t.id
			join thread using(utid) order by s.name, s.ts, s.dur`,
		"stats": `select name, severity, value from stats where value <> 0 and severity <> 'info'`,
	})
	cmd := exec.Command(node, "../perfetto/testdata/tpquery.mjs", dir, file)
	cmd.Stdin = bytes.NewReader(q)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tpquery: %v\n%s", err, stderr.Bytes())
	}
	var res map[string][]map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, s := range res["stats"] {
		t.Errorf("trace_processor stats: %v", s)
	}
	var got, want []string
	for _, s := range res["slices"] {
		ts, _ := strconv.ParseInt(fmt.Sprint(s["ts"]), 10, 64)
		dur := fmt.Sprint(s["dur"])
		if d, _ := strconv.ParseInt(dur, 10, 64); d > 0 && fmt.Sprint(s["depth"]) != "0" {
			t.Errorf("slice %v nests (depth %v)", s["name"], s["depth"])
		}
		got = append(got, fmt.Sprintf("%s %d %s", s["name"], ts, dur)) // from trace_start, cycle 0
	}
	for _, s := range jsonSlices() {
		want = append(want, fmt.Sprintf("%s %d %d", s.Name, s.TS, s.Dur))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("trace_processor slices:\n got %q\nwant %q", got, want)
	}
}
