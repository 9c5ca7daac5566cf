package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// runStatsJSON runs stats on target while it fires n test:value events,
// and returns the JSON result.
func runStatsJSON(t *testing.T, e *env, target *proc, n int, args ...string) statsResult {
	t.Helper()
	p := e.start("cli", append([]string{"stats", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--json"}, args...)...)
	p.stderr.waitFor(t, "Counting 1 marker of")
	target.do(t, fmt.Sprintf("fire %d", n))
	p.signal(t, os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("stats %v exited %d:\n%s", args, code, p.stderr.text())
	}
	var got statsResult
	if err := json.Unmarshal([]byte(p.stdout.text()), &got); err != nil {
		t.Fatalf("stats %v: %v:\n%s", args, err, p.stdout.text())
	}
	return got
}

func TestStatsAggregations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	const n = 48

	// Several --by fields and --value: per (key, lat), the sum, min
	// and max of i, computed here independently.
	type agg struct {
		count         uint64
		sum, min, max int64
	}
	want := map[string]*agg{}
	for i := range n {
		key, lat := valueOf(i)
		k := key + "/" + shortDuration(lat)
		a := want[k]
		if a == nil {
			a = &agg{min: int64(i)}
			want[k] = a
		}
		a.count++
		a.sum += int64(i)
		a.max = int64(i)
	}
	got := runStatsJSON(t, e, target, n, "--by", "key,lat", "--value", "i")
	if got.Events != n || len(got.Counts) != len(want) || len(got.ByFields) != 2 || got.Value != "i" {
		t.Fatalf("stats --by key,lat --value i = %+v", got)
	}
	for _, c := range got.Counts {
		if len(c.Values) != 2 {
			t.Fatalf("row %+v: want two key values", c)
		}
		w := want[c.Values[0]+"/"+c.Values[1]]
		if w == nil || c.Count != w.count || c.Sum == nil || int64(*c.Sum) != w.sum || *c.Min != w.min || *c.Max != w.max || *c.Avg != w.sum/int64(w.count) {
			t.Errorf("row %v: count %d sum %v min %v max %v, want %+v", c.Values, c.Count, c.Sum, c.Min, c.Max, w)
		}
	}

	// A linear histogram of lat (1, 2, 4, 8µs, a quarter each).
	const nl = 44
	got = runStatsJSON(t, e, target, nl, "--lhist", "lat:0:10us:2us")
	if len(got.Histograms) != 1 || got.Hist != "lat" {
		t.Fatalf("stats --lhist = %+v", got)
	}
	lows := map[int64]uint64{}
	for _, b := range got.Histograms[0].Buckets {
		if b.Low == nil || b.High != *b.Low+2000 {
			t.Errorf("bucket %+v: want [low, low+2µs)", b)
			continue
		}
		lows[*b.Low] = b.Count
	}
	if fmt.Sprint(lows) != fmt.Sprint(map[int64]uint64{0: nl / 4, 2000: nl / 4, 4000: nl / 4, 8000: nl / 4}) {
		t.Errorf("linear buckets %v, want a quarter each at 0, 2, 4 and 8µs", lows)
	}

	// --top keeps the biggest rows and says how many are left out.
	const nt = 40
	got = runStatsJSON(t, e, target, nt, "--by", "i", "--top", "5")
	if len(got.Counts) != 5 || got.More != nt-5 {
		t.Errorf("stats --by i --top 5: %d rows, %d more; want 5 and %d", len(got.Counts), got.More, nt-5)
	}

	// The text form of --lhist, with duration bounds.
	p := e.start("cli", "stats", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--lhist", "lat:0:10us:2us", "--by", "key", "--value", "lat")
	p.stderr.waitFor(t, "Counting 1 marker of")
	target.do(t, "fire 12")
	p.signal(t, os.Interrupt)
	p.wait(t)
	out := p.stdout.text()
	for _, w := range []string{"COUNT  MARKER      KEY  SUM   AVG    MIN  MAX", "4      test:value  a    15µs  3.75µs  1µs  8µs", "@lat[test:value, key=a]", "[8µs, 10µs)"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(w), " ")) {
			t.Errorf("stats text lacks %q:\n%s", w, out)
		}
	}
}

// --every prints and clears the table at each interval.
func TestStatsEvery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	p := e.start("cli", "stats", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--by", "key", "--every", "50ms", "--json")
	p.stderr.waitFor(t, "Counting 1 marker of")
	target.do(t, "fire 9")
	p.stdout.waitFor(t, `"events": 9,`)
	target.do(t, "fire 3")
	p.stdout.waitFor(t, `"events": 3,`) // cleared: not 12
	p.signal(t, os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("stats --every exited %d:\n%s", code, p.stderr.text())
	}
	dec := json.NewDecoder(strings.NewReader(p.stdout.text()))
	var total uint64
	docs := 0
	for dec.More() {
		var r statsResult
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		docs++
		total += r.Events
		var rows uint64
		for _, c := range r.Counts {
			rows += c.Count
		}
		if rows != r.Events {
			t.Errorf("interval %d: rows add up to %d, events %d", docs, rows, r.Events)
		}
	}
	if total != 12 || docs < 2 {
		t.Errorf("%d intervals with %d events in all, want 12 events in 2 or more", docs, total)
	}
}

// stats TRACE_DIR counts a recorded trace the same way.
func TestStatsOfTrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir)
	target.do(t, "fire 30")
	target.do(t, "other 4")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	r := e.cli("stats", dir, "-e", "test:value", "--by", "key", "--hist", "lat", "--json")
	var got statsResult
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil {
		t.Fatalf("stats %s: exit %d\n%s%s", dir, r.code, r.stdout, r.stderr)
	}
	if got.Events != 30 || len(got.Counts) != 3 || len(got.Histograms) != 3 {
		t.Fatalf("stats of the trace = %+v, want 30 events in 3 keys with histograms", got)
	}
	for _, c := range got.Counts {
		if c.Count != 10 {
			t.Errorf("key %q: %d events, want 10", c.Value, c.Count)
		}
	}
	// Without -e, every marker.
	r = e.cli("stats", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "34 events in ") || !strings.Contains(r.stdout, "test:other") {
		t.Errorf("stats %s: exit %d\n%s%s", dir, r.code, r.stdout, r.stderr)
	}
	for _, tt := range []struct{ args []string }{
		{[]string{"stats", dir, "-p", "1"}},
		{[]string{"stats", dir, "-e", "test:value", "--filter", "i > 1"}},
		{[]string{"stats", dir, "--by", "kye"}},
	} {
		if r := e.cli(tt.args...); r.code != exitUsage {
			t.Errorf("tracemark %s: exit %d, want %d\n%s", strings.Join(tt.args, " "), r.code, exitUsage, r.stderr)
		}
	}
}

func TestStatsUsageErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"stats", "-p", pid, "-e", "test:value", "--by", "key", "--by", "lat"}, `given twice ("key", then "lat")`},
		{[]string{"stats", "-p", pid, "-e", "test:value", "--by", "kye"}, `no marker matched by the -e globs has a field named "kye" (did you mean "key"?)`},
		{[]string{"stats", "-p", pid, "-e", "test:value", "--by", "key,"}, "an empty field name"},
		{[]string{"stats", "-p", pid, "-e", "test:value", "--lhist", "lat:0:1"}, "want FIELD:MIN:MAX:STEP"},
		{[]string{"stats", "-p", pid, "-e", "test:value", "--lhist", "lat:0:1ms:0"}, "the step must be positive"},
		{[]string{"stats", "-p", pid, "-e", "test:value", "--value", "key"}, `numeric field named "key"`},
		{[]string{"stats", "-p", pid, "-e", "test:value", "--hist", "lat", "--lhist", "lat:0:1ms:1us"}, "choose one histogram"},
	} {
		r := e.cli(tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("tracemark %s: exit %d, want %d with %q:\n%s", strings.Join(tt.args, " "), r.code, exitUsage, tt.msg, r.stderr)
		}
	}
}

// A recorded trace knows its durations: convert --to text and stats of
// the trace print them as durations, as the live commands do.
func TestTraceKeepsDurations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir)
	target.do(t, "fire 4")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	r := e.cli("convert", dir, "--to", "text")
	if r.code != 0 || !strings.Contains(r.stdout, `test:value: i=3 key="a" lat=8µs`) {
		t.Errorf("convert --to text: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.cli("stats", dir, "-e", "test:value", "--value", "lat")
	if r.code != 0 || !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "4 test:value 15µs 3.75µs 1µs 8µs") {
		t.Errorf("stats of the trace: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
