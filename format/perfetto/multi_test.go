package perfetto_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/internal/tracetest"
	"github.com/tracemark/tracemark/format/perfetto"
)

// multiProc is one process of the MultiWriter tests: its trace, and the
// pid and name to give it.
type multiProc struct {
	dir  string
	pid  int64
	name string
}

// convertMulti converts the traces of procs with one MultiWriter, all
// the events of each process in turn (the writer must not need them
// interleaved in time order across processes).
func convertMulti(t *testing.T, procs []multiProc, opts testOpts) []byte {
	t.Helper()
	var ps []perfetto.Process
	var rs []*ctf.Reader
	for _, p := range procs {
		r, err := ctf.Open(p.dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rs = append(rs, r)
		ps = append(ps, perfetto.Process{PID: p.pid, Name: p.name, Info: r.Info(), Classes: r.Classes()})
	}
	var out bytes.Buffer
	w, err := perfetto.NewMultiWriter(&out, ps, opts.options()...)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		for ev, err := range r.Events() {
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteEvent(i, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEvent(0, &ctf.Event{}); !errors.Is(err, perfetto.ErrClosed) {
		t.Errorf("WriteEvent after Close: %v, want ErrClosed", err)
	}
	return out.Bytes()
}

// TestMultiTraceProcessor converts three processes (two of them with the
// same trace, as two replicas of one program give) into one Perfetto
// trace and reads it with trace_processor: the process table has each
// process with its pid and name, and each process's slices, instants,
// counters and lost-data tracks are exactly those of its own trace, on
// tracks of that process.
func TestMultiTraceProcessor(t *testing.T) {
	query := traceProcessor(t)
	small, demo := t.TempDir(), t.TempDir()
	tracetest.Write(t, small)
	tracetest.WriteDemo(t, demo, 2000)
	procs := []multiProc{{small, 301, "api"}, {demo, 307, "db"}, {small, 309, "api"}}
	// Options that name fields of one trace only apply where they can.
	opts := testOpts{Counters: append(append([]perfetto.FieldRef(nil), smallOpts.Counters...), demoOpts.Counters...)}
	file := filepath.Join(t.TempDir(), "multi.pftrace")
	if err := os.WriteFile(file, convertMulti(t, procs, opts), 0o644); err != nil {
		t.Fatal(err)
	}
	queries := map[string]string{
		"process": `select pid, name from process where pid <> 0 order by pid`,
		// Every track that holds data belongs to a process.
		"orphans": `select t.name from track t where (t.id in (select track_id from slice) or t.id in (select track_id from counter))
			and t.id not in (select id from process_track) and t.id not in (select id from process_counter_track)`,
		"stats": tpQueries["stats"],
	}
	for _, p := range procs {
		pid := strconv.FormatInt(p.pid, 10)
		queries["slices"+pid] = `select s.ts, s.dur, s.name, s.category, s.depth, t.name as track, s.arg_set_id
			from slice s join process_track t on s.track_id = t.id join process p using (upid) where p.pid = ` + pid
		queries["args"+pid] = tpQueries["args"]
		queries["counters"+pid] = `select c.ts, c.value, t.name as track from counter c
			join process_counter_track t on c.track_id = t.id join process p using (upid) where p.pid = ` + pid
	}
	res := query(t, file, queries)
	if got := res["process"]; len(got) != 3 || str(got[0]["pid"]) != "301" || str(got[0]["name"]) != "api" ||
		str(got[1]["pid"]) != "307" || str(got[1]["name"]) != "db" || str(got[2]["pid"]) != "309" || str(got[2]["name"]) != "api" {
		t.Errorf("processes %v, want 301 api, 307 db, 309 api", got)
	}
	if o := res["orphans"]; len(o) != 0 {
		t.Errorf("tracks of no process: %v", o)
	}
	for _, p := range procs {
		pid := strconv.FormatInt(p.pid, 10)
		got := fromTraceProcessor(t, map[string][]map[string]any{
			"slices": res["slices"+pid], "args": res["args"+pid], "counters": res["counters"+pid], "stats": res["stats"]})
		want := expect(t, p.dir, opts)
		if len(want.slices) == 0 {
			t.Fatalf("pid %s: the trace has no events", pid)
		}
		compare(t, "pid "+pid+" slices and instants", got.slices, want.slices)
		compare(t, "pid "+pid+" counters", got.counters, want.counters)
	}
}

// A field that no process has is refused, as by NewWriter; a pid that
// Perfetto cannot hold is refused.
func TestMultiWriterChecks(t *testing.T) {
	dir := t.TempDir()
	tracetest.Write(t, dir)
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := perfetto.Process{PID: 5, Name: "x", Info: r.Info(), Classes: r.Classes()}
	_, err = perfetto.NewMultiWriter(&bytes.Buffer{}, []perfetto.Process{p}, perfetto.WithCounters(perfetto.FieldRef{Event: "no:such", Field: "f"}))
	if !errors.Is(err, perfetto.ErrBadField) {
		t.Errorf("unknown counter field: %v, want ErrBadField", err)
	}
	p.PID = 0
	if _, err := perfetto.NewMultiWriter(&bytes.Buffer{}, []perfetto.Process{p}); err == nil {
		t.Error("pid 0 accepted")
	}
	p.PID = 5
	w, err := perfetto.NewMultiWriter(&bytes.Buffer{}, []perfetto.Process{p})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEvent(1, &ctf.Event{}); !errors.Is(err, perfetto.ErrNoProcess) {
		t.Errorf("process 1 of 1: %v, want ErrNoProcess", err)
	}
}

// TestManySequences checks the packets of a MultiWriter of 130
// processes, whose sequence ids from 128 on take two bytes: each event
// packet is on its process's sequence, and its track event has its type
// and a track declared on that sequence.
func TestManySequences(t *testing.T) {
	const n = 130
	var ps []perfetto.Process
	for i := range n {
		ps = append(ps, perfetto.Process{PID: int64(1000 + i), Name: "p" + strconv.Itoa(i), Info: tracetest.Info(), Classes: tracetest.DemoClasses})
	}
	var out bytes.Buffer
	w, err := perfetto.NewMultiWriter(&out, ps)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := &ctf.Event{Class: &tracetest.DemoClasses[2], Time: int64(1e9 + i), Fields: []ctf.Value{ctf.StringValue("item-7")}}
		if err := w.WriteEvent(i, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	tracks := map[uint64]uint64{} // track uuid → sequence that declared it
	events := map[uint64]int{}    // sequence → instants
	for _, p := range fields(t, out.Bytes()) {
		var seq uint64
		var te, td []byte
		for _, f := range fields(t, p.b) {
			switch f.num {
			case 10:
				seq = f.v
			case 11:
				te = f.b
			case 60:
				td = f.b
			}
		}
		for _, f := range fields(t, td) {
			if f.num == 1 {
				tracks[f.v] = seq
			}
		}
		if te == nil {
			continue
		}
		var typ, track uint64
		for _, f := range fields(t, te) {
			switch f.num {
			case 9:
				typ = f.v
			case 11:
				track = f.v
			}
		}
		if typ != 3 || tracks[track] != seq {
			t.Fatalf("sequence %d: track event of type %d on track %d (declared on sequence %d), want an instant on a track of its own sequence", seq, typ, track, tracks[track])
		}
		events[seq]++
	}
	for seq := uint64(1); seq <= n; seq++ {
		if events[seq] != 1 {
			t.Errorf("sequence %d: %d instants, want 1", seq, events[seq])
		}
	}
}
