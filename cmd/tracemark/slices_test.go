package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
)

// TestDemoTraceSlices records the demo service and converts the trace:
// the markers' span declarations, kept in the trace, make slices in
// Perfetto (read back by trace_processor) and complete events in
// chrome-json, for duration spans and for the batch job's start/done
// pairs.
func TestDemoTraceSlices(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, pid := e.startDemoService("--rate", "50", "--lifetime", "1m", "--attached")
	dir := filepath.Join(e.runtime, "trace")
	r := e.cli("record", "-p", pid, "-e", "storage:query", "-e", "batch:*", "-o", dir, "--duration", "2500ms", "--progress", "none")
	if r.code != 0 {
		t.Fatalf("record exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The slices the trace calls for: "name start-ns duration-ns".
	tr, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	var origin int64 = -1
	started := map[string]int64{}
	for ev, err := range tr.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Class == nil {
			continue
		}
		if origin < 0 {
			origin = ev.Time - ev.Time%1e9 // chrome-json's trace_start
		}
		switch ev.Name() {
		case "storage:query":
			want = append(want, fmt.Sprintf("%s %d %d", ev.Name(), ev.Time-ev.Fields[2].Int, ev.Fields[2].Int))
		case "batch:job_start":
			started[string(ev.Fields[0].Bytes)] = ev.Time
		case "batch:job_done":
			if s, ok := started[string(ev.Fields[0].Bytes)]; ok {
				want = append(want, fmt.Sprintf("%s %d %d", ev.Name(), s, ev.Time-s))
				delete(started, string(ev.Fields[0].Bytes))
			}
		}
	}
	tr.Close()
	slices.Sort(want)
	if !slices.ContainsFunc(want, func(s string) bool { return strings.HasPrefix(s, "batch:job_done ") }) {
		t.Fatalf("no paired batch job in the trace: %v", want)
	}

	js := filepath.Join(e.runtime, "trace.json")
	if r := e.cli("convert", dir, "--to", "chrome-json", "-o", js); r.code != 0 {
		t.Fatalf("convert --to chrome-json exited %d: %s", r.code, r.stderr)
	}
	data, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	// ts and dur are microseconds with three decimals: read them exactly.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw struct {
		TraceEvents []map[string]any `json:"traceEvents"`
	}
	if err := dec.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range raw.TraceEvents {
		if ev["ph"] == "X" {
			got = append(got, fmt.Sprintf("%s %d %d", ev["name"], origin+micros(t, ev["ts"]), micros(t, ev["dur"])))
		}
	}
	slices.Sort(got)
	compareSlices(t, "chrome-json complete events", got, want)

	pf := filepath.Join(e.runtime, "trace.pftrace")
	if r := e.cli("convert", dir, "--to", "perfetto", "-o", pf); r.code != 0 {
		t.Fatalf("convert --to perfetto exited %d: %s", r.code, r.stderr)
	}
	res := traceProcessorQuery(t, pf, map[string]string{
		"slices": `select name, ts, dur, depth from slice where dur > 0`,
		"stats":  `select name, severity, value from stats where value <> 0 and severity <> 'info'`,
	})
	for _, s := range res["stats"] {
		t.Errorf("trace_processor stats: %v", s)
	}
	got = got[:0]
	for _, s := range res["slices"] {
		if fmt.Sprint(s["depth"]) != "0" {
			t.Errorf("slice %v nests", s)
		}
		got = append(got, fmt.Sprintf("%s %s %s", s["name"], s["ts"], s["dur"]))
	}
	slices.Sort(got)
	compareSlices(t, "perfetto slices", got, want)
}

// compareSlices reports the first differences of two sorted lists.
func compareSlices(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s: %d, want the trace's %d spans", what, len(got), len(want))
	for i, shown := 0, 0; i < max(len(got), len(want)) && shown < 5; i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("  got %q, want %q", g, w)
			shown++
		}
	}
}

// micros reads a JSON number of microseconds with three decimals as
// nanoseconds.
func micros(t *testing.T, v any) int64 {
	t.Helper()
	s := fmt.Sprint(v)
	ip, fp, _ := strings.Cut(s, ".")
	fp = (fp + "000")[:3]
	n, err := strconv.ParseInt(ip+fp, 10, 64)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return n
}

// traceProcessorQuery runs SQL queries on a trace with Perfetto's
// trace_processor (WebAssembly, under node, as the format/perfetto tests
// do), or skips the test without it.
func traceProcessorQuery(t *testing.T, trace string, queries map[string]string) map[string][]map[string]any {
	t.Helper()
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
	q, _ := json.Marshal(queries)
	cmd := exec.Command(node, "../../format/perfetto/testdata/tpquery.mjs", dir, trace)
	cmd.Stdin = bytes.NewReader(q)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tpquery: %v\n%s", err, stderr.Bytes())
	}
	var res map[string][]map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("tpquery output: %v\n%.2000s", err, out)
	}
	return res
}
