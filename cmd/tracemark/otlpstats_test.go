package main

import (
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/otlptest"
	"github.com/tracemark/tracemark/internal/wire"
)

// The OTLP histogram has exactly the buckets of the log2 table: integer
// bucket [2^k, 2^(k+1)) is OTLP's (2^k-1, 2^(k+1)-1].
func TestHistogramBucketsExact(t *testing.T) {
	g := newAggregator(aggSpec{hist: "lat"})
	c := &wire.EventClass{Name: "m", Fields: []wire.ClassField{{Name: "lat", Type: "int64", Kind: "duration"}}}
	vals := []int64{-5, 0, 1, 2, 3, 4, 7, 8, 1000}
	for _, v := range vals {
		g.add(&wire.Record{Class: c, Fields: []ctf.Value{ctf.IntValue(v)}})
	}
	now := time.Now()
	ms := g.metrics(now, now, 3)
	if len(ms) != 3 || ms[2].Name != "tracemark.hist.lat" || ms[2].Unit != "ns" {
		t.Fatalf("metrics %+v", ms)
	}
	p := ms[2].Histogram.Points[0]
	// Check every value falls in the OTLP bucket that counts it.
	bucket := func(x float64) int {
		for i, b := range p.Bounds {
			if x <= b {
				return i
			}
		}
		return len(p.Bounds)
	}
	want := make([]uint64, len(p.Counts))
	for _, v := range vals {
		want[bucket(float64(v))]++
	}
	if !reflect.DeepEqual(p.Counts, want) || len(p.Counts) != len(p.Bounds)+1 {
		t.Errorf("bounds %v counts %v, want counts %v", p.Bounds, p.Counts, want)
	}
	if !reflect.DeepEqual(p.Bounds[:5], []float64{-1, 0, 1, 3, 7}) || p.Count != uint64(len(vals)) || p.Min != -5 || p.Max != 1000 {
		t.Errorf("point %+v", p)
	}
	if ms[1].Sum.Points[0].Value != 3 || ms[0].Sum.Points[0].Value != int64(len(vals)) {
		t.Errorf("sums %+v %+v", ms[0].Sum.Points, ms[1].Sum.Points)
	}
}

func TestStatsOTLP(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	e := newEnv(t)
	target := e.startTarget()
	p := e.start("cli", "stats", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--by", "key", "--hist", "lat", "--otlp", col.URL())
	p.stderr.waitFor(t, "Counting 1 marker ")
	target.do(t, "fire 9")
	p.signal(t, os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("stats exited %d:\n%s", code, p.stderr.text())
	}
	if !strings.Contains(p.stderr.text(), "OTLP: counts exported to "+col.URL()) {
		t.Errorf("stderr:\n%s", p.stderr.text())
	}
	wantEventsPerKey(t, col, 3)
}

// wantEventsPerKey checks the last metrics the collector received:
// tracemark.events is want for each of the target's keys.
func wantEventsPerKey(t *testing.T, col *otlptest.Receiver, want int64) {
	t.Helper()
	ms := col.Metrics()
	if len(ms) == 0 {
		t.Fatal("no metrics received")
	}
	last := ms[len(ms)-1]
	for _, k := range keys {
		if got := otlptest.SumValue(last, "tracemark.events", "key", k); got != want {
			t.Errorf("tracemark.events{key=%q} = %d, want %d", k, got, want)
		}
	}
}

// With --every the table is cleared each interval, the metrics are not:
// they stay cumulative from the start, as without it.
func TestStatsEveryOTLP(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	e := newEnv(t)
	target := e.startTarget()
	p := e.start("cli", "stats", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--by", "key", "--every", "1s", "--otlp", col.URL())
	p.stderr.waitFor(t, "Counting 1 marker ")
	target.do(t, "fire 9")
	p.stdout.waitFor(t, ": 9 events, 0 lost") // an interval's table, then cleared
	target.do(t, "fire 9")
	p.signal(t, os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("stats exited %d:\n%s", code, p.stderr.text())
	}
	wantEventsPerKey(t, col, 6) // the counts of both intervals
}

// What --otlp does not export is said at the start, not left out unsaid.
func TestStatsOTLPSaysWhatStaysLocal(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	e := newEnv(t)
	target := e.startTarget()
	p := e.start("cli", "stats", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--value", "lat", "--otlp", col.URL())
	p.stderr.waitFor(t, "warning: --otlp exports the counts and --hist's histogram only: --lhist and --value stay on this terminal")
	p.stderr.waitFor(t, "Counting 1 marker ")
	p.signal(t, os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("stats exited %d:\n%s", code, p.stderr.text())
	}
}

// The --by attributes of the counts have the types the events' log
// records give the same fields, so that a back end matches them: an int
// field's count carries an int, not its text.
func TestStatsOTLPKeysTyped(t *testing.T) {
	g := newAggregator(aggSpec{by: []string{"status", "ok", "path", "ratio"}})
	c := &wire.EventClass{Name: "http:done", Fields: []wire.ClassField{
		{Name: "status", Type: "int32", Kind: "int32"}, {Name: "ok", Type: "uint8", Kind: "bool"},
		{Name: "path", Type: "string", Kind: "string"}, {Name: "ratio", Type: "double", Kind: "float64"}}}
	path := []byte("/cart")
	for range 2 {
		g.add(&wire.Record{Class: c, Fields: []ctf.Value{ctf.IntValue(200), ctf.UintValue(1), {Kind: ctf.String, Bytes: path}, ctf.FloatValue(0.5)}})
	}
	copy(path, "/XXXX") // the record's bytes are reused
	now := time.Now()
	col := otlptest.NewReceiver(t)
	exp, err := otlp.New(col.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close(t.Context())
	if err := exp.ExportMetrics(t.Context(), g.metrics(now, now, 0)); err != nil {
		t.Fatal(err)
	}
	ps := otlptest.SumPoints(col.Metrics()[0], metricEvents)
	want := map[string]any{"marker": "http:done", "status": int64(200), "ok": true, "path": "/cart", "ratio": 0.5}
	if len(ps) != 1 || ps[0].Value != 2 || !reflect.DeepEqual(ps[0].Attributes, want) {
		t.Fatalf("points %+v\nwant attributes %#v", ps, want)
	}
}

// A collector that refuses the counts is said on stderr while stats
// runs, once per status, not only at exit, and the exit fails.
func TestStatsOTLPRefusalWarned(t *testing.T) {
	t.Parallel()
	col := otlptest.NewReceiver(t)
	var metrics atomic.Int32
	col.Answer(func(path string, _ int) (int, map[string]string, []byte) {
		if path != "/v1/metrics" {
			return 0, nil, nil
		}
		metrics.Add(1)
		return 401, nil, []byte("no token")
	})
	e := newEnv(t)
	target := e.startTarget()
	p := e.start("cli", "stats", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--by", "key", "--interval", "50ms", "--otlp", col.URL())
	p.stderr.waitFor(t, "Counting 1 marker ")
	target.do(t, "fire 9")
	p.stderr.waitFor(t, "warning: OTLP: the collector refuses the counts, which are not retried: otlp: "+col.URL()+"/v1/metrics answered 401 Unauthorized: no token")
	for metrics.Load() < 4 { // refused again, and not said again
		target.do(t, "fire 1")
	}
	p.signal(t, os.Interrupt)
	code := p.wait(t)
	if n := strings.Count(p.stderr.text(), "refuses the counts"); n != 1 || code == 0 {
		t.Errorf("stats exited %d with %d warnings, want 1:\n%s", code, n, p.stderr.text())
	}
}

// Values that look alike in the table are still counted apart: two byte
// strings with the same first 32 bytes (the table shows those only), a
// string and its cleaned text.
func TestStatsKeysExact(t *testing.T) {
	g := newAggregator(aggSpec{by: []string{"h"}})
	c := &wire.EventClass{Name: "m", Fields: []wire.ClassField{{Name: "h", Type: "bytes", Kind: "bytes"}}}
	d := &wire.EventClass{Name: "n", Fields: []wire.ClassField{{Name: "h", Type: "string", Kind: "string"}}}
	a, b := make([]byte, 64), make([]byte, 64)
	b[63] = 1
	g.add(&wire.Record{Class: c, Fields: []ctf.Value{ctf.BytesValue(a)}})
	g.add(&wire.Record{Class: c, Fields: []ctf.Value{ctf.BytesValue(b)}})
	g.add(&wire.Record{Class: c, Fields: []ctf.Value{ctf.BytesValue(b)}})
	g.add(&wire.Record{Class: d, Fields: []ctf.Value{ctf.StringValue("a\x01")}})
	g.add(&wire.Record{Class: d, Fields: []ctf.Value{ctf.StringValue(clean("a\x01"))}})
	counts := map[string][]uint64{}
	for _, r := range g.keys() {
		counts[r.marker] = append(counts[r.marker], r.count)
	}
	if !reflect.DeepEqual(counts, map[string][]uint64{"m": {2, 1}, "n": {1, 1}}) {
		t.Errorf("rows per marker %v, want m: 2 and 1, n: 1 and 1", counts)
	}
}
