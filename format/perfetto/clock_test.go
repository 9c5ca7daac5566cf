package perfetto_test

import (
	"bytes"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format"
	"github.com/tracemark/tracemark/format/internal/tracetest"
	"github.com/tracemark/tracemark/format/perfetto"
)

// clockStats are the trace_processor stats that a wrong clock snapshot,
// a timestamp it cannot convert, or a packet it drops for want of the
// incremental state (whose packet defaults name the clock) would count.
// Some are only of severity info, so they are checked by name.
var clockStats = []string{
	"invalid_clock_snapshots",
	"clock_sync_failure",
	"clock_sync_failure_unknown_source_clock",
	"clock_sync_failure_unknown_target_clock",
	"clock_sync_failure_no_path",
	"clock_sync_mixed_clock_sources",
	"clock_sync_failure_undeferrable_packet_loss",
	"packet_skipped_seq_needs_incremental_state_invalid",
	"interned_data_skipped_incremental_state_invalid",
	"trace_packet_defaults_missing_sequence_id",
	"track_event_missing_timestamp",
	"track_event_tokenizer_errors",
	"track_event_parser_errors",
	"misplaced_end_event",
	"trace_sorter_negative_timestamp_dropped",
}

// edgeClasses are the classes of the in-memory process of
// TestIncrementalTimestamps: an instant and a slice with a duration.
var edgeClasses = []ctf.EventClass{
	{ID: 0, Name: "edge:instant", Fields: []ctf.Field{{Name: "n", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}}}},
	{ID: 1, Name: "edge:slice", Fields: []ctf.Field{{Name: "n", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}},
		{Name: "latency", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}}}},
}

// edgeEvents are events, in time order, whose packets take every kind of
// delta: zero (equal times), small, huge positive (a jump of 2^62 ns),
// negative (slices that begin before the packet written last, one of
// them 2^62 ns back, and events after a loss whose interval ends after
// them). It returns the lines expected of them too.
func edgeEvents() ([]ctf.Event, []string) {
	const o = tracetest.Origin
	type e struct {
		t, lat int64 // lat < 0: an instant
	}
	var evs []ctf.Event
	var want []string
	add := func(n int, x e) {
		if x.lat < 0 {
			evs = append(evs, ctf.Event{Class: &edgeClasses[0], Time: x.t, Fields: []ctf.Value{ctf.IntValue(int64(n))}})
			want = append(want, sliceLine(x.t, 0, "edge:instant", "edge", "edge", []string{"n=int:" + strconv.Itoa(n)}))
			return
		}
		evs = append(evs, ctf.Event{Class: &edgeClasses[1], Time: x.t, Fields: []ctf.Value{ctf.IntValue(int64(n)), ctf.IntValue(x.lat)}})
		want = append(want, sliceLine(x.t-x.lat, x.lat, "edge:slice", "edge", "edge",
			[]string{"n=int:" + strconv.Itoa(n), "latency=int:" + strconv.FormatInt(x.lat, 10)}))
	}
	for i, x := range []e{
		{o + 1_000, -1}, {o + 1_000, -1}, {o + 1_000, 0}, // equal times
		{o + 2_000_000, -1}, {o + 2_000_100, 2_000_000}, // a slice back before the two previous packets
		{o + 2_000_200, o + 2_000_200 - 1}, // a slice from 1 ns after the epoch
	} {
		add(i, x)
	}
	// A loss whose interval ends after the events below.
	evs = append(evs, ctf.Event{Stream: 2, CPU: 1, Time: o + 2_000_250, EndTime: o + 30_000_000, Discarded: 3})
	want = append(want, sliceLine(o+2_000_250, 30_000_000-2_000_250, "lost 3 events", "tracemark", "stream 2 (P1)",
		[]string{"stream=uint:2", "cpu=uint:1", "lost_events=uint:3", "lost_packets=uint:0"}))
	for i, x := range []e{
		{o + 2_000_300, -1}, {o + 3_000_000, 500}, {o + 20_000_000, -1},
		{1 << 62, -1},                     // a jump of 2^62 - o ns
		{1<<62 + 10, 1<<62 + 10 - 3},      // and back to 3 ns after the epoch
		{1<<62 + 20, -1}, {1<<62 + 20, 0}, // 2^62 - 3 + 20 ns on
	} {
		add(10+i, x)
	}
	slices.Sort(want)
	return evs, want
}

// TestIncrementalTimestamps converts four processes with a MultiWriter,
// their events interleaved in time order across processes: the small
// trace (whose losses span later events), two demo traces (slices that
// begin before the packets written before them, and a loss), and the
// edge events, whose deltas are zero, huge, and negative by as much.
// trace_processor must read every slice, instant and counter of each at
// exactly the time of the input, and count no clock or incremental state
// error; the test's own decoder reads the same.
func TestIncrementalTimestamps(t *testing.T) {
	query := traceProcessor(t)
	small, demo, demo2 := t.TempDir(), t.TempDir(), t.TempDir()
	tracetest.Write(t, small)
	tracetest.WriteDemo(t, demo, 1500)
	tracetest.WriteDemo(t, demo2, 1000)
	opts := testOpts{Counters: append(append([]perfetto.FieldRef(nil), smallOpts.Counters...), demoOpts.Counters...)}
	edge, edgeWant := edgeEvents()

	dirs := []string{small, demo, demo2}
	pids := []int64{301, 307, 309, 311}
	var ps []perfetto.Process
	var pulls []func() (*ctf.Event, error, bool)
	for i, dir := range dirs {
		r, err := ctf.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ps = append(ps, perfetto.Process{PID: pids[i], Name: "p" + strconv.Itoa(i), Info: r.Info(), Classes: r.Classes()})
		next, stop := iter.Pull2(r.Events())
		defer stop()
		pulls = append(pulls, next)
	}
	ps = append(ps, perfetto.Process{PID: pids[len(dirs)], Name: "edge", Info: tracetest.Info(), Classes: edgeClasses})
	pulls = append(pulls, func() (*ctf.Event, error, bool) {
		if len(edge) == 0 {
			return nil, nil, false
		}
		ev := &edge[0]
		edge = edge[1:]
		return ev, nil, true
	})
	var out bytes.Buffer
	w, err := perfetto.NewMultiWriter(&out, ps, opts.options()...)
	if err != nil {
		t.Fatal(err)
	}
	// Merge by time: one pending event per process, the earliest written.
	pending := make([]*ctf.Event, len(pulls))
	for i, next := range pulls {
		ev, err, ok := next()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			pending[i] = ev
		}
	}
	for {
		k := -1
		for i, ev := range pending {
			if ev != nil && (k < 0 || ev.Time < pending[k].Time) {
				k = i
			}
		}
		if k < 0 {
			break
		}
		if err := w.WriteEvent(k, pending[k]); err != nil {
			t.Fatal(err)
		}
		ev, err, ok := pulls[k]()
		if err != nil {
			t.Fatal(err)
		}
		pending[k] = nil
		if ok {
			pending[k] = ev
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Each process's packets are buffered, so the sequences interleave
	// in the file in chunks: check that they do.
	switches, last := 0, uint64(0)
	for _, p := range fields(t, out.Bytes()) {
		for _, f := range fields(t, p.b) {
			if f.num == 10 && f.v != last {
				switches, last = switches+1, f.v
			}
		}
	}
	if switches < 2*len(ps) {
		t.Fatalf("the processes' packets interleave only %d times in the file", switches)
	}
	file := filepath.Join(t.TempDir(), "multi.pftrace")
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	queries := map[string]string{
		"stats":      tpQueries["stats"],
		"clockstats": `select name, value from stats where name in ('` + strings.Join(clockStats, "', '") + `')`,
	}
	for _, pid := range pids {
		p := strconv.FormatInt(pid, 10)
		queries["slices"+p] = `select s.ts, s.dur, s.name, s.category, s.depth, t.name as track, s.arg_set_id
			from slice s join process_track t on s.track_id = t.id join process p using (upid) where p.pid = ` + p
		queries["args"+p] = tpQueries["args"]
		queries["counters"+p] = `select c.ts, c.value, t.name as track from counter c
			join process_counter_track t on c.track_id = t.id join process p using (upid) where p.pid = ` + p
	}
	res := query(t, file, queries)
	seen := map[string]bool{}
	for _, s := range res["clockstats"] {
		seen[str(s["name"])] = true
		if v := str(s["value"]); v != "0" {
			t.Errorf("trace_processor stats: %s = %s", str(s["name"]), v)
		}
	}
	for _, name := range clockStats {
		if !seen[name] {
			t.Errorf("trace_processor has no stat %s: another version? The check would be vacuous", name)
		}
	}
	for i, pid := range pids {
		p := strconv.FormatInt(pid, 10)
		got := fromTraceProcessor(t, map[string][]map[string]any{
			"slices": res["slices"+p], "args": res["args"+p], "counters": res["counters"+p], "stats": res["stats"]})
		var want expected
		if i < len(dirs) {
			want = expect(t, dirs[i], opts)
		} else {
			want.slices = edgeWant
		}
		compare(t, "pid "+p+" slices and instants", got.slices, want.slices)
		compare(t, "pid "+p+" counters", got.counters, want.counters)
	}
}

// TestDecodeEdgeTimestamps reads the edge events with the test's decoder,
// which applies the clock rules trace_processor does, for the runs
// without node.
func TestDecodeEdgeTimestamps(t *testing.T) {
	evs, want := edgeEvents()
	var out bytes.Buffer
	w, err := perfetto.NewWriter(&out, tracetest.Info(), edgeClasses)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if err := w.WriteEvent(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := fromDecoded(decode(t, out.Bytes()))
	compare(t, "slices", got.slices, want)
}

// TestOutputSize checks the size of the demo trace's conversion: at most
// half the Chrome JSON's, and at most 52 bytes an event (49.6 today),
// which absolute timestamps (9 bytes a packet, 55.9 bytes an event)
// exceed.
func TestOutputSize(t *testing.T) {
	dir := t.TempDir()
	n := tracetest.WriteDemo(t, dir, 3000)
	size := map[string]int{}
	for _, to := range []string{format.Perfetto, format.ChromeJSON} {
		var out countWriter
		if err := format.Convert(dir, to, &out); err != nil {
			t.Fatal(err)
		}
		size[to] = int(out.n)
	}
	pf, js := size[format.Perfetto], size[format.ChromeJSON]
	t.Logf("%d events: perfetto %d bytes (%.2f an event), chrome-json %d (%.2f)", n, pf, float64(pf)/float64(n), js, float64(js)/float64(n))
	if 2*pf > js || pf > 52*n {
		t.Errorf("perfetto output of %d events is %d bytes (%.2f an event), chrome-json's %d: want at most half, and 52 bytes an event",
			n, pf, float64(pf)/float64(n), js)
	}
}
