package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/wire"
)

// benchPacket returns a packet of n records of a class like test:value
// (int64, a short string, a duration) and the class.
func benchPacket(tb testing.TB, n int) ([]byte, ctf.EventClass) {
	ec := ctf.EventClass{ID: 1, TruncatedID: 0x8001, Name: "test:value", Truncation: true, Fields: []ctf.Field{
		{Name: "i", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}},
		{Name: "key", Type: ctf.FieldType{Kind: ctf.String}},
		{Name: "lat", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}}}}
	var recs []byte
	for i := range n {
		var err error
		recs, err = ctf.AppendRecord(recs, &ec, uint64(i), []ctf.Value{ctf.IntValue(int64(i)), ctf.StringValue("GET /api"), ctf.IntValue(1000)}, 0)
		if err != nil {
			tb.Fatal(err)
		}
	}
	return recs, ec
}

// contextBlock returns the context block that a session writes for names:
// pid 77, procname "app", cpu 5, thread id tid.
func contextBlock(names []string, tid uint32) []byte {
	var b []byte
	for _, n := range names {
		switch n {
		case ctxPID:
			b = binary.LittleEndian.AppendUint32(b, 77)
		case ctxProcname:
			b = append(b, "app\x00"...)
		case ctxCPU:
			b = binary.LittleEndian.AppendUint32(b, 5)
		case ctxTID, ctxVTID:
			b = binary.LittleEndian.AppendUint32(b, tid)
		}
	}
	return b
}

// withContext returns records as a session with context names writes
// them: the records of recs (of class ec) with the context block after
// the header of each, the i-th with thread id tid(i).
func withContext(tb testing.TB, recs []byte, ec *ctf.EventClass, names []string, tid func(int) uint32) []byte {
	var out []byte
	for i, pos := 0, 0; pos < len(recs); i++ {
		n, err := ctf.RecordSize(recs[pos:], ec)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, recs[pos:pos+ctf.EventHeaderSize]...)
		out = append(out, contextBlock(names, tid(i))...)
		out = append(out, recs[pos+ctf.EventHeaderSize:pos+n]...)
		pos += n
	}
	return out
}

// TestContextAsIs: the records carry the context the process recorded,
// which the trace declares in the order asked for: they are written as
// they come, and read back with it.
func TestContextAsIs(t *testing.T) {
	plain, ec := benchPacket(t, 3)
	names := []string{ctxCPU, ctxProcname, ctxPID, ctxVTID}
	recs := withContext(t, plain, &ec, names, func(i int) uint32 { return uint32(100 + i) })
	h := wire.Hello{PID: 77, Program: "app", Context: names}
	c := newEventContext(slices.Clone(names), h).inNamespace(77, 77)
	if err := c.check(h); err != nil {
		t.Fatal(err)
	}
	c.addClasses([]ctf.EventClass{ec})
	out, err := c.insert(5, recs)
	if err != nil || &out[0] != &recs[0] {
		t.Fatalf("the records were rewritten (%v)", err)
	}
	evs := readBack(t, c, ec, out)
	if len(evs) != 3 {
		t.Fatalf("read %d events, want 3", len(evs))
	}
	for i, ev := range evs {
		if ev.Context[0].Uint != 5 || string(ev.Context[1].Bytes) != "app" || ev.Context[2].Int != 77 || ev.Context[3].Uint != uint64(100+i) ||
			ev.Fields[0].Int != int64(i) || string(ev.Fields[1].Bytes) != "GET /api" {
			t.Errorf("event %d: context %v fields %v", i, ev.Context, ev.Fields)
		}
	}
	// Asked for nothing, a stream with a context (a named session's) gets it.
	if c := newEventContext(nil, h); c == nil || c.check(h) != nil || len(c.fields) != 4 {
		t.Fatalf("no --context, records with %v: %+v", names, c)
	}
	// Records whose context is not the one asked for: an error, not a
	// trace that misreads them.
	for _, hc := range [][]string{nil, {ctxPID}, {ctxVTID, ctxCPU, ctxProcname, ctxPID}} {
		if err := newEventContext(names, wire.Hello{PID: 77, Context: hc}).check(h); err == nil {
			t.Errorf("--context %v from records with %v: no error", names, hc)
		}
	}
}

func TestContextFixedBytes(t *testing.T) {
	ec := ctf.EventClass{ID: 2, Name: "test:span", Truncation: true, Fields: []ctf.Field{
		{Name: "trace_id", Type: ctf.FieldType{Kind: ctf.Bytes, Bits: 128}},
		{Name: "span_id", Type: ctf.FieldType{Kind: ctf.Bytes, Bits: 64}},
		{Name: "name", Type: ctf.FieldType{Kind: ctf.String}}}}
	id := []byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10")
	var plain []byte
	for i := range 3 {
		var err error
		plain, err = ctf.AppendRecord(plain, &ec, uint64(i), []ctf.Value{ctf.BytesValue(id), ctf.BytesValue(id[:8]), ctf.StringValue("op")}, 0)
		if err != nil {
			t.Fatal(err)
		}
	}
	names := []string{ctxPID, ctxTID}
	recs := withContext(t, plain, &ec, names, func(i int) uint32 { return 9 })
	c := newEventContext(names, wire.Hello{PID: 77, Program: "app", Context: names})
	c.addClasses([]ctf.EventClass{ec})
	c.host = &tidMap{ids: map[uint32]uint32{9: 1009}, scanned: time.Now()}
	out, err := c.insert(0, recs)
	if err != nil {
		t.Fatal(err)
	}
	evs := readBack(t, c, ec, out)
	for n, ev := range evs {
		if ev.Context[0].Int != 77 || ev.Context[1].Uint != 1009 || string(ev.Fields[0].Bytes) != string(id) || string(ev.Fields[2].Bytes) != "op" {
			t.Errorf("event %d: context %v fields %v", n, ev.Context, ev.Fields)
		}
	}
	if len(evs) != 3 {
		t.Errorf("read %d events, want 3", len(evs))
	}
}

// BenchmarkContext measures what each context field costs tracemark per
// event as it writes a packet that carries it: nothing but for tid in a
// process of another PID namespace ("tid-mapped"), whose ids it maps in
// place.
func BenchmarkContext(b *testing.B) {
	const n = 1024
	plain, ec := benchPacket(b, n)
	for _, names := range [][]string{nil, {ctxPID}, {ctxPID, ctxProcname}, {ctxPID, ctxProcname, ctxCPU},
		{ctxVTID}, {ctxTID}, {ctxTID, ctxVTID}, {ctxPID, ctxTID}, {"tid-mapped"}, {ctxPID, ctxProcname, ctxCPU, "tid-mapped"}} {
		name := "none"
		if names != nil {
			name = fmt.Sprint(names)
		}
		b.Run(name, func(b *testing.B) {
			names := names
			mapped := slices.Contains(names, "tid-mapped")
			if mapped {
				names = slices.Clone(names)
				names[len(names)-1] = ctxTID
			}
			recs := withContext(b, plain, &ec, names, func(i int) uint32 { return uint32(1000 + i%4) })
			c := newEventContext(names, wire.Hello{PID: 4242, Program: "tm-target", Context: names})
			if c != nil {
				c.addClasses([]ctf.EventClass{ec})
			}
			if mapped { // a process in another PID namespace; the ids map to themselves
				c.host = &tidMap{ids: map[uint32]uint32{1000: 1000, 1001: 1001, 1002: 1002, 1003: 1003}, scanned: time.Now()}
			}
			b.SetBytes(int64(len(recs)))
			for b.Loop() {
				if c == nil {
					continue
				}
				if _, err := c.insert(3, recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/event")
		})
	}
}

// TestContextHostTID maps the thread ids of a process in another PID
// namespace to the host's in tid, in place, leaving vtid as the process
// wrote it.
func TestContextHostTID(t *testing.T) {
	plain, ec := benchPacket(t, 3)
	names := []string{ctxCPU, ctxTID, ctxProcname, ctxPID, ctxVTID}
	recs := withContext(t, plain, &ec, names, func(i int) uint32 { return uint32(100 + i) })
	h := wire.Hello{PID: 77, Program: "app", Context: names}
	c := newEventContext(names, h)
	c.addClasses([]ctf.EventClass{ec})
	// 100 and 101 are known threads; 102 ended unseen.
	c.host = &tidMap{task: filepath.Join(t.TempDir(), "none"), ids: map[uint32]uint32{100: 5100, 101: 5101}, scanned: time.Now()}
	out, err := c.insert(5, recs)
	if err != nil {
		t.Fatal(err)
	}
	evs := readBack(t, c, ec, out)
	want := [][4]uint64{{5, 5100, 77, 100}, {5, 5101, 77, 101}, {5, 0, 77, 102}}
	if len(evs) != len(want) {
		t.Fatalf("read %d events, want %d", len(evs), len(want))
	}
	for i, ev := range evs {
		got := [4]uint64{ev.Context[0].Uint, ev.Context[1].Uint, uint64(ev.Context[3].Int), ev.Context[4].Uint}
		if got != want[i] || string(ev.Context[2].Bytes) != "app" || ev.Fields[0].Int != int64(i) || string(ev.Fields[1].Bytes) != "GET /api" {
			t.Errorf("event %d: context %v fields %v, want context %v", i, got, ev.Fields, want[i])
		}
	}
	// A malformed packet is an error, not a write past the records.
	if _, err := c.insert(5, recs[:ctf.EventHeaderSize+6]); err == nil {
		t.Error("a truncated record: no error")
	}
}

// readBack writes the records into a trace with c's context and reads its
// events.
func readBack(t *testing.T, c *eventContext, ec ctf.EventClass, recs []byte) []ctf.Event {
	t.Helper()
	dir := t.TempDir()
	w, err := ctf.Create(dir, ctf.TraceInfo{Clock: ctf.Clock{Name: "monotonic", Frequency: 1e9}, EventContext: c.fields})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddEventClass(ec); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(5, ctf.PacketInfo{BeginTS: 0, EndTS: 2, CPU: 5}, recs); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []ctf.Event
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		e := *ev
		e.Context = slices.Clone(ev.Context)
		e.Fields = slices.Clone(ev.Fields)
		for i := range e.Fields {
			e.Fields[i].Bytes = slices.Clone(e.Fields[i].Bytes)
		}
		out = append(out, e)
	}
	return out
}

// TestTIDMap maps thread ids through a made-up /proc/PID/task, finding
// threads that start later.
func TestTIDMap(t *testing.T) {
	task := t.TempDir()
	thread := func(host, inner int) {
		d := filepath.Join(task, strconv.Itoa(host))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		st := fmt.Sprintf("Name:\tapp\nPid:\t%d\nNSpid:\t%d\t%d\nNSpgid:\t1\n", host, host, inner)
		if err := os.WriteFile(filepath.Join(d, "status"), []byte(st), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	thread(5100, 1)
	thread(5101, 7)
	m := newTIDMapAt(task)
	if m.tid(1) != 5100 || m.tid(7) != 5101 {
		t.Fatalf("tid(1), tid(7) = %d, %d; want 5100, 5101", m.tid(1), m.tid(7))
	}
	thread(5102, 9)
	if got := m.tid(9); got != 5102 {
		t.Fatalf("a thread that started right after a scan: tid %d, want 5102 (a new id is looked for at once)", got)
	}
	// A thread no scan finds (it ended unseen) maps to 0, and is looked
	// for again only after tidRescan.
	if got := m.tid(11); got != 0 {
		t.Fatalf("a thread that is not there: tid %d, want 0", got)
	}
	thread(5103, 11)
	if got := m.tid(11); got != 0 {
		t.Fatalf("a missed thread right after a scan: tid %d, want 0 until tidRescan", got)
	}
	m.scanned = time.Time{} // as if tidRescan had passed
	if got := m.tid(11); got != 5103 {
		t.Fatalf("a missed thread after tidRescan: tid %d, want 5103", got)
	}
	if (*tidMap)(nil).tid(42) != 42 {
		t.Fatal("the nil map (same namespace) does not return vtid")
	}
	for _, bad := range []string{"Pid:\t3\n", "NSpid:\n", "NSpid:\tx\t3\n"} {
		if _, _, ok := parseNSpid([]byte(bad)); ok {
			t.Errorf("parseNSpid(%q) succeeded", bad)
		}
	}
}

// TestContextAgentRefusal: an agent that predates context fields refuses
// the request field; tracemark says what to do.
func TestContextAgentRefusal(t *testing.T) {
	old := wire.Errorf(wire.CodeUnknownField, "%s", `unknown field "context"`)
	err := errContextAgent(old)
	if !errors.Is(err, old) || !strings.Contains(err.Error(), "predates context fields") || !strings.Contains(err.Error(), "rebuild") {
		t.Fatalf("errContextAgent: %v", err)
	}
	other := wire.Errorf(wire.CodeUnknownField, "%s", `unknown field "checked"`)
	if errContextAgent(other) != other {
		t.Fatal("errContextAgent rewrote an error about another field")
	}
}
