package perfetto_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/internal/encode"
	"github.com/tracemark/tracemark/format/internal/tracetest"
	"github.com/tracemark/tracemark/format/perfetto"
)

// convertDir converts the trace in dir with opts.
func convertDir(t *testing.T, dir string, opts testOpts) []byte {
	t.Helper()
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	w, err := perfetto.NewWriter(&out, r.Info(), r.Classes(), opts.options()...)
	if err != nil {
		t.Fatal(err)
	}
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

// realString is the canonical form of a float in the comparisons: NaN is
// "NaN" and -0 is "0", as trace_processor's SQL results through JSON
// give no other.
func realString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case f == 0:
		return "0"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// expected is the content a conversion must have, derived from the CTF
// trace by the rules of the package documentation, as sorted lists of
// lines: "ts dur name|category|track|arg=type:value;..." for slices and
// instants (dur 0), "ts track value" for counter values.
type expected struct {
	slices, counters []string
}

func sliceLine(ts, dur int64, name, cat, track string, args []string) string {
	slices.Sort(args)
	return fmt.Sprintf("%d %d %s|%s|%s|%s", ts, dur, name, cat, track, strings.Join(args, ";"))
}

func expect(t *testing.T, dir string, opts testOpts) expected {
	t.Helper()
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var e expected
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Class == nil {
			var name []string
			if ev.Discarded > 0 {
				name = append(name, plural(ev.Discarded, "event"))
			}
			if ev.LostPackets > 0 {
				name = append(name, plural(ev.LostPackets, "packet"))
			}
			e.slices = append(e.slices, sliceLine(ev.Time, ev.EndTime-ev.Time, "lost "+strings.Join(name, " and "), "tracemark",
				fmt.Sprintf("stream %d (P%d)", ev.Stream, ev.CPU),
				[]string{fmt.Sprintf("stream=uint:%d", ev.Stream), fmt.Sprintf("cpu=uint:%d", ev.CPU),
					fmt.Sprintf("lost_events=uint:%d", ev.Discarded), fmt.Sprintf("lost_packets=uint:%d", ev.LostPackets)}))
			continue
		}
		var args, truncated []string
		start, end := ev.Time, ev.Time
		durDone := false
		for i, f := range ev.Class.Fields {
			v := ev.Fields[i]
			var s string
			switch v.Kind {
			case ctf.Int:
				s = fmt.Sprintf("int:%d", v.Int)
			case ctf.Uint:
				s = fmt.Sprintf("uint:%d", v.Uint)
			case ctf.Float:
				s = "real:" + realString(v.Float)
			case ctf.String:
				s = "string:" + string([]rune(string(v.Bytes))) // U+FFFD for each invalid byte
			case ctf.Bytes:
				s = "string:" + hex.EncodeToString(v.Bytes)
			}
			args = append(args, f.Name+"="+s)
			isDur := opts.Durations == nil && f.Type == (ctf.FieldType{Kind: ctf.Int, Bits: 64}) && (f.Name == "latency" || f.Name == "duration") ||
				slices.Contains(opts.Durations, perfetto.FieldRef{Event: ev.Class.Name, Field: f.Name})
			if isDur && !durDone {
				durDone = true
				if v.Int >= 0 {
					start = ev.Time - v.Int
				}
			}
			if ev.Truncated&(1<<i) != 0 {
				truncated = append(truncated, f.Name)
			}
			if slices.Contains(opts.Counters, perfetto.FieldRef{Event: ev.Class.Name, Field: f.Name}) {
				var fv float64
				switch v.Kind {
				case ctf.Int:
					fv = float64(v.Int)
				case ctf.Uint:
					fv = float64(v.Uint)
				case ctf.Float:
					fv = v.Float
				}
				e.counters = append(e.counters, fmt.Sprintf("%d %s %s", ev.Time, ev.Class.Name+" "+f.Name, realString(fv)))
			}
		}
		if len(truncated) > 0 {
			args = append(args, "_truncated=string:"+strings.Join(truncated, ","))
		}
		p := encode.Provider(ev.Class.Name)
		e.slices = append(e.slices, sliceLine(start, end-start, ev.Class.Name, p, p, args))
	}
	slices.Sort(e.slices)
	slices.Sort(e.counters)
	return e
}

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// fromDecoded is the content of a decoded trace in the form of expected.
func fromDecoded(d decoded) expected {
	var e expected
	for _, ev := range d.events {
		tr := d.tracks[ev.track]
		if ev.typ == 4 {
			f, _ := strconv.ParseFloat(ev.value, 64)
			e.counters = append(e.counters, fmt.Sprintf("%d %s %s", ev.ts, tr.name, realString(f)))
			continue
		}
		var args []string
		for _, a := range ev.args {
			v := a.value
			if r, ok := strings.CutPrefix(v, "real:"); ok {
				f, _ := strconv.ParseFloat(r, 64)
				v = "real:" + realString(f)
			}
			args = append(args, a.name+"="+v)
		}
		var dur int64
		if ev.typ == 1 {
			dur = int64(ev.end - ev.ts)
		}
		e.slices = append(e.slices, sliceLine(int64(ev.ts), dur, ev.name, ev.category, tr.name, args))
	}
	slices.Sort(e.slices)
	slices.Sort(e.counters)
	return e
}

func compare(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s: %d lines, want %d", what, len(got), len(want))
	shown := 0
	for i := 0; i < max(len(got), len(want)) && shown < 10; i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("line %d:\n got  %s\n want %s", i, g, w)
			shown++
		}
	}
}

var smallOpts = testOpts{Counters: []perfetto.FieldRef{{Event: "ints:unsigned", Field: "b"}, {Event: "floats", Field: "y"}}}

var demoOpts = testOpts{Counters: []perfetto.FieldRef{{Event: "http:request_done", Field: "latency"}}}

// TestDecodeSmall checks the structure and content of the small trace's
// conversion, decoded here.
func TestDecodeSmall(t *testing.T) {
	dir := t.TempDir()
	tracetest.Write(t, dir)
	out := convertDir(t, dir, smallOpts)
	d := decode(t, out)
	want := expect(t, dir, smallOpts)
	got := fromDecoded(d)
	compare(t, "slices", got.slices, want.slices)
	compare(t, "counters", got.counters, want.counters)
	var proc []dtrack
	for _, tr := range d.tracks {
		if tr.pid != 0 {
			proc = append(proc, tr)
		}
	}
	if len(proc) != 1 || proc[0].pid != 4242 || proc[0].processName != "app" {
		t.Errorf("process tracks %+v, want one of pid 4242 named app", proc)
	}
	for _, tr := range d.tracks {
		if strings.HasPrefix(tr.name, "stream ") && tr.parentName != perfetto.NoticeTrack {
			t.Errorf("track %q is under %q, want %q", tr.name, tr.parentName, perfetto.NoticeTrack)
		}
	}
}

// TestDecodeDemo checks the demo-like trace: slices for the latency
// fields, overlapping requests on separate tracks of the same name.
func TestDecodeDemo(t *testing.T) {
	dir := t.TempDir()
	n := tracetest.WriteDemo(t, dir, 2000)
	out := convertDir(t, dir, demoOpts)
	d := decode(t, out)
	want := expect(t, dir, demoOpts)
	got := fromDecoded(d)
	compare(t, "slices", got.slices, want.slices)
	compare(t, "counters", got.counters, want.counters)
	if len(want.slices) != n+1 || len(want.counters) != 2000 { // one notice
		t.Fatalf("expected %d slices and %d counter values, want %d and 2000", len(want.slices), len(want.counters), n+1)
	}
	// Slices of one track never overlap, and requests overlap, so http
	// needs several tracks.
	lanes := map[string]int{}
	ends := map[uint64]uint64{}
	for _, ev := range d.events {
		if ev.typ != 1 {
			continue
		}
		if ev.ts <= ends[ev.track] && ends[ev.track] != 0 {
			t.Fatalf("slice %q at %d overlaps the previous one on its track (ends %d)", ev.name, ev.ts, ends[ev.track])
		}
		ends[ev.track] = ev.end
	}
	for uuid := range ends {
		lanes[d.tracks[uuid].name]++
	}
	if lanes["http"] < 2 {
		t.Errorf("http slices on %d tracks, want several: requests overlap", lanes["http"])
	}
}

// TestDurationsOption checks that an empty Durations makes every event
// an instant, and that a named field makes slices.
func TestDurationsOption(t *testing.T) {
	dir := t.TempDir()
	tracetest.WriteDemo(t, dir, 50)
	for _, opts := range []testOpts{
		{Durations: []perfetto.FieldRef{}},
		{Durations: []perfetto.FieldRef{{Event: "storage:query", Field: "latency"}}},
	} {
		got := fromDecoded(decode(t, convertDir(t, dir, opts)))
		want := expect(t, dir, opts)
		compare(t, fmt.Sprintf("slices with %+v", opts.Durations), got.slices, want.slices)
	}
}

func TestBadFieldRef(t *testing.T) {
	for _, tt := range []struct {
		opts testOpts
		msg  string
	}{
		{testOpts{Counters: []perfetto.FieldRef{{Event: "http:nope", Field: "x"}}}, `the trace has no event "http:nope"`},
		{testOpts{Counters: []perfetto.FieldRef{{Event: "http:request", Field: "nope"}}}, `has no field "nope"`},
		{testOpts{Counters: []perfetto.FieldRef{{Event: "http:request", Field: "path"}}}, `is string, not a number`},
		{testOpts{Durations: []perfetto.FieldRef{{Event: "floats", Field: "x"}}}, `not a signed integer`},
	} {
		_, err := perfetto.NewWriter(&bytes.Buffer{}, tracetest.Info(), tracetest.Classes, tt.opts.options()...)
		if !errors.Is(err, perfetto.ErrBadField) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%+v: error %v, want ErrBadField saying %q", tt.opts, err, tt.msg)
		}
	}
	for _, s := range []string{"", "x", ":x", "x:"} {
		if _, err := perfetto.ParseFieldRef(s); !errors.Is(err, perfetto.ErrBadField) {
			t.Errorf("ParseFieldRef(%q): %v, want ErrBadField", s, err)
		}
	}
	if r, err := perfetto.ParseFieldRef("http:request_done:latency"); err != nil || r != (perfetto.FieldRef{Event: "http:request_done", Field: "latency"}) {
		t.Errorf("ParseFieldRef: %+v, %v", r, err)
	}
}

// TestLongMessages checks messages of 128 bytes and more, whose lengths
// take more than the one byte reserved, and strings too long to intern.
func TestLongMessages(t *testing.T) {
	class := ctf.EventClass{ID: 3, Name: "big:event", Fields: []ctf.Field{{Name: "s", Type: ctf.FieldType{Kind: ctf.String}}}}
	var out bytes.Buffer
	w, err := perfetto.NewWriter(&out, tracetest.Info(), []ctf.EventClass{class})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, n := range []int{10, 127, 128, 300, 20000, 300} {
		s := strings.Repeat(string(rune('a'+i)), n)
		ev := ctf.Event{Class: &class, Time: int64(1000 + i), Fields: []ctf.Value{ctf.StringValue(s)}}
		if err := w.WriteEvent(&ev); err != nil {
			t.Fatal(err)
		}
		want = append(want, sliceLine(int64(1000+i), 0, "big:event", "big", "big", []string{"s=string:" + s}))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := fromDecoded(decode(t, out.Bytes()))
	compare(t, "slices", got.slices, want)
}

type failWriter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n--; f.n < 0 {
		return 0, errDisk
	}
	return len(p), nil
}

func TestWriteErrorIsSticky(t *testing.T) {
	dir := t.TempDir()
	tracetest.WriteLarge(t, dir, 20000, 2)
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := perfetto.NewWriter(&failWriter{n: 1}, r.Info(), r.Classes())
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if werr = w.WriteEvent(ev); werr != nil {
			break
		}
	}
	if !errors.Is(werr, errDisk) {
		t.Fatalf("WriteEvent: %v, want %v", werr, errDisk)
	}
	if err := w.WriteEvent(&ctf.Event{Class: &tracetest.BenchClass}); !errors.Is(err, errDisk) {
		t.Errorf("WriteEvent after the error: %v", err)
	}
	if err := w.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close: %v", err)
	}
}

func TestWriteAfterClose(t *testing.T) {
	w, err := perfetto.NewWriter(&bytes.Buffer{}, tracetest.Info(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.WriteEvent(&ctf.Event{Class: &tracetest.BenchClass}); !errors.Is(err, perfetto.ErrClosed) {
		t.Errorf("WriteEvent after Close: %v", err)
	}
}

// TestNoAllocs checks that writing an event whose names and strings are
// interned allocates nothing.
func TestNoAllocs(t *testing.T) {
	w, err := perfetto.NewWriter(discard{}, tracetest.Info(), tracetest.DemoClasses, demoOpts.options()...)
	if err != nil {
		t.Fatal(err)
	}
	ev := &ctf.Event{Class: &tracetest.DemoClasses[1], Time: 1e18, Fields: []ctf.Value{
		ctf.StringValue("GET"), ctf.StringValue("/items/7"), ctf.IntValue(200), ctf.IntValue(12345), ctf.IntValue(99)}}
	w.WriteEvent(ev)
	if n := testing.AllocsPerRun(1000, func() {
		ev.Time += 20000
		if err := w.WriteEvent(ev); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations an event", n)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// traceProcessor returns the command that runs testdata/tpquery.mjs on a
// trace, or skips the test without node or trace_processor.wasm. The wasm
// is looked up in $TRACEMARK_TRACE_PROCESSOR, else in the cache directory
// that scripts/install-trace-processor fills.
func traceProcessor(t *testing.T) func(t *testing.T, trace string, queries map[string]string) map[string][]map[string]any {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIP: node not found; the trace_processor checks need it (run scripts/install-trace-processor)")
	}
	dir := os.Getenv("TRACEMARK_TRACE_PROCESSOR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Skipf("SKIP: no cache directory (%v) and TRACEMARK_TRACE_PROCESSOR unset", err)
		}
		dir = filepath.Join(cache, "tracemark", "trace-processor-v55.3")
	}
	if _, err := os.Stat(filepath.Join(dir, "trace_processor.wasm")); err != nil {
		t.Skipf("SKIP: trace_processor.wasm not in %s: run scripts/install-trace-processor, or set TRACEMARK_TRACE_PROCESSOR", dir)
	}
	return func(t *testing.T, trace string, queries map[string]string) map[string][]map[string]any {
		t.Helper()
		q, _ := json.Marshal(queries)
		cmd := exec.Command(node, "testdata/tpquery.mjs", dir, trace)
		cmd.Stdin = bytes.NewReader(q)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tpquery: %v\n%s", err, stderr.Bytes())
		}
		var res map[string][]map[string]any
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("tpquery output (%d bytes): %v\n%s", len(out), err, out[:min(len(out), 2000)])
		}
		return res
	}
}

var tpQueries = map[string]string{
	"slices": `select s.ts, s.dur, s.name, s.category, s.depth, t.name as track, s.arg_set_id
		from slice s join track t on s.track_id = t.id`,
	"args": `select arg_set_id, key, value_type, int_value, string_value, real_value
		from args where arg_set_id in (select arg_set_id from slice)`,
	"counters": `select c.ts, c.value, t.name as track from counter c join counter_track t on c.track_id = t.id`,
	"stats":    `select name, idx, severity, source, value from stats where value <> 0`,
	"process":  `select pid, name from process where pid <> 0`,
	"units":    `select name, unit from counter_track`,
}

// str returns a result cell as a string ("" for NULL).
func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// tpReal is a real result cell in canonical form.
func tpReal(v any) string {
	switch v {
	case nil, "NaN": // SQLite stores NaN as NULL
		return "NaN"
	case "Infinity":
		return realString(math.Inf(1))
	case "-Infinity":
		return realString(math.Inf(-1))
	}
	f, _ := v.(float64)
	return realString(f)
}

// fromTraceProcessor is what trace_processor read, in the form of
// expected; it checks the stats and the process (if queried) on the way.
func fromTraceProcessor(t *testing.T, res map[string][]map[string]any) expected {
	t.Helper()
	args := map[string][]string{}
	for _, a := range res["args"] {
		key, ok := strings.CutPrefix(str(a["key"]), "debug.")
		if !ok {
			t.Errorf("argument %q is not a debug annotation", str(a["key"]))
			continue
		}
		var v string
		switch typ := str(a["value_type"]); typ {
		case "int":
			v = "int:" + str(a["int_value"])
		case "uint": // stored as int64
			i, _ := strconv.ParseInt(str(a["int_value"]), 10, 64)
			v = "uint:" + strconv.FormatUint(uint64(i), 10)
		case "real":
			v = "real:" + tpReal(a["real_value"])
		case "string":
			v = "string:" + str(a["string_value"])
		default:
			v = typ + ":?"
		}
		id := str(a["arg_set_id"])
		args[id] = append(args[id], key+"="+v)
	}
	var e expected
	for _, s := range res["slices"] {
		ts, _ := strconv.ParseInt(str(s["ts"]), 10, 64)
		dur, _ := strconv.ParseInt(str(s["dur"]), 10, 64)
		if dur > 0 && str(s["depth"]) != "0" {
			t.Errorf("slice %q at %d has depth %s: slices with durations must not nest", str(s["name"]), ts, str(s["depth"]))
		}
		e.slices = append(e.slices, sliceLine(ts, dur, str(s["name"]), str(s["category"]), str(s["track"]), args[str(s["arg_set_id"])]))
	}
	for _, c := range res["counters"] {
		e.counters = append(e.counters, fmt.Sprintf("%s %s %s", str(c["ts"]), str(c["track"]), tpReal(c["value"])))
	}
	slices.Sort(e.slices)
	slices.Sort(e.counters)
	for _, s := range res["stats"] {
		name, sev := str(s["name"]), str(s["severity"])
		bad := sev == "error" || sev == "data_loss"
		for _, w := range []string{"skipped", "invalid", "misplaced", "unmatched", "mismatch", "unknown", "missing", "interned", "tokenizer", "parser"} {
			bad = bad || strings.Contains(name, w)
		}
		if bad {
			t.Errorf("trace_processor stats: %s[%s] = %s (%s, %s)", name, str(s["idx"]), str(s["value"]), sev, str(s["source"]))
		}
	}
	if p, ok := res["process"]; ok && (len(p) != 1 || str(p[0]["pid"]) != "4242" || str(p[0]["name"]) != "app") {
		t.Errorf("processes %v, want pid 4242 named app", p)
	}
	return e
}

// TestTraceProcessor reads conversions with Perfetto's trace_processor
// and compares every slice, instant and counter value, with names,
// tracks and typed arguments, with the CTF input.
func TestTraceProcessor(t *testing.T) {
	query := traceProcessor(t)
	for _, tt := range []struct {
		name  string
		write func(dir string)
		opts  testOpts
	}{
		{"small", func(dir string) { tracetest.Write(t, dir) }, smallOpts},
		{"demo", func(dir string) { tracetest.WriteDemo(t, dir, 3000) }, demoOpts},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.write(dir)
			file := filepath.Join(t.TempDir(), "trace.pftrace")
			if err := os.WriteFile(file, convertDir(t, dir, tt.opts), 0o644); err != nil {
				t.Fatal(err)
			}
			res := query(t, file, tpQueries)
			got := fromTraceProcessor(t, res)
			for _, u := range res["units"] {
				// A duration field's counter is in nanoseconds.
				if want := map[bool]string{true: "ns", false: ""}[strings.HasSuffix(str(u["name"]), " latency")]; str(u["unit"]) != want {
					t.Errorf("counter track %q has unit %q, want %q", str(u["name"]), str(u["unit"]), want)
				}
			}
			want := expect(t, dir, tt.opts)
			compare(t, "slices and instants", got.slices, want.slices)
			compare(t, "counters", got.counters, want.counters)
		})
	}
}

// TestTraceProcessorSpans reads the conversion of a trace with span
// declarations with trace_processor: start/done pairs and declared
// durations are slices of the right length, overlapping slices go on
// tracks of their own instead of nesting, and the rest are instants.
func TestTraceProcessorSpans(t *testing.T) {
	query := traceProcessor(t)
	dir := t.TempDir()
	tracetest.WriteSpans(t, dir)
	file := filepath.Join(t.TempDir(), "trace.pftrace")
	if err := os.WriteFile(file, convertDir(t, dir, testOpts{}), 0o644); err != nil {
		t.Fatal(err)
	}
	res := query(t, file, map[string]string{
		"slices": `select s.ts, s.dur, s.name, s.depth, s.track_id, t.name as track
			from slice s join track t on s.track_id = t.id order by s.name, s.ts, s.dur`,
		"stats": tpQueries["stats"], "process": tpQueries["process"],
		"args": `select 0 as arg_set_id, '' as key, '' as value_type where 0`,
	})
	fromTraceProcessor(t, res) // checks the stats
	var got, want []string
	lanes := map[string]map[int]string{} // provider -> lane -> track id
	for _, s := range res["slices"] {
		ts, _ := strconv.ParseInt(str(s["ts"]), 10, 64)
		got = append(got, fmt.Sprintf("%s %d %s depth=%s track=%s", str(s["name"]), ts-tracetest.Origin, str(s["dur"]), str(s["depth"]), str(s["track"])))
	}
	for _, s := range tracetest.SpanSlices {
		p := encode.Provider(s.Name)
		want = append(want, fmt.Sprintf("%s %d %d depth=0 track=%s", s.Name, s.TS, s.Dur, p))
	}
	slices.Sort(got)
	slices.Sort(want)
	// Instants inside a slice of their track are its children (depth 1)
	// in trace_processor: compare slices with durations for depth.
	for i := range got {
		if strings.Contains(got[i], " 0 depth=") {
			got[i] = strings.Replace(got[i], "depth=1", "depth=0", 1)
		}
	}
	compare(t, "slices", got, want)
	// Overlapping slices of a provider are on different tracks, the same
	// lane on the same one.
	for _, s := range res["slices"] {
		name := str(s["name"])
		ts, _ := strconv.ParseInt(str(s["ts"]), 10, 64)
		dur, _ := strconv.ParseInt(str(s["dur"]), 10, 64)
		for _, w := range tracetest.SpanSlices {
			if w.Name != name || w.TS != ts-tracetest.Origin || w.Dur != dur || dur == 0 {
				continue
			}
			p := encode.Provider(name)
			if lanes[p] == nil {
				lanes[p] = map[int]string{}
			}
			if id, ok := lanes[p][w.Lane]; ok && id != str(s["track_id"]) {
				t.Errorf("%s at %d: lane %d on track %s and %s", name, w.TS, w.Lane, id, str(s["track_id"]))
			}
			lanes[p][w.Lane] = str(s["track_id"])
		}
	}
	for p, l := range lanes {
		if len(l) > 1 && l[0] == l[1] {
			t.Errorf("provider %s: overlapping slices share track %s", p, l[0])
		}
	}
	if len(lanes["job"]) != 2 || len(lanes["db"]) != 2 {
		t.Errorf("lanes %v, want two for job and for db", lanes)
	}
}

// testOpts are the options of a test conversion as data, which the
// tests' model of the output (expect) reads.
type testOpts struct {
	Counters  []perfetto.FieldRef
	Durations []perfetto.FieldRef // nil: the default
}

// options returns the options that o describes.
func (o testOpts) options() []perfetto.Option {
	opts := []perfetto.Option{perfetto.WithCounters(o.Counters...)}
	if o.Durations != nil {
		opts = append(opts, perfetto.WithDurations(o.Durations...))
	}
	return opts
}

// TestInvalidOption checks that a field an option names that the trace
// does not have is an error naming the option.
func TestInvalidOption(t *testing.T) {
	for name, opt := range map[string]perfetto.Option{
		"WithCounters":  perfetto.WithCounters(perfetto.FieldRef{Event: "http:nope", Field: "x"}),
		"WithDurations": perfetto.WithDurations(perfetto.FieldRef{Event: "floats", Field: "x"}),
	} {
		_, err := perfetto.NewWriter(&bytes.Buffer{}, tracetest.Info(), tracetest.Classes, opt)
		if !errors.Is(err, perfetto.ErrBadField) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want ErrBadField naming the option", name, err)
		}
		_, err = perfetto.NewMultiWriter(&bytes.Buffer{}, []perfetto.Process{{PID: 1, Info: tracetest.Info(), Classes: tracetest.Classes}}, opt)
		if !errors.Is(err, perfetto.ErrBadField) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: NewMultiWriter: error %v, want ErrBadField naming the option", name, err)
		}
	}
}
