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

func TestContextInsert(t *testing.T) {
	recs, ec := benchPacket(t, 3)
	c := newEventContext([]string{ctxCPU, ctxProcname, ctxPID}, wire.Hello{PID: 77, Program: "app"})
	c.addClasses([]ctf.EventClass{ec})
	out, err := c.insert(5, recs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w, err := ctf.Create(dir, ctf.TraceInfo{Clock: ctf.Clock{Name: "monotonic", Frequency: 1e9}, EventContext: c.fields})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddEventClass(ec); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(5, ctf.PacketInfo{BeginTS: 0, EndTS: 2, CPU: 5}, out); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Context[0].Uint != 5 || string(ev.Context[1].Bytes) != "app" || ev.Context[2].Int != 77 || ev.Fields[0].Int != int64(n) || string(ev.Fields[1].Bytes) != "GET /api" {
			t.Errorf("event %d: context %v fields %v", n, ev.Context, ev.Fields)
		}
		n++
	}
	if n != 3 {
		t.Errorf("read %d events, want 3", n)
	}
	c.classes = nil
	if _, err := c.insert(0, recs); err == nil {
		t.Error("insert into records of an unknown class succeeded")
	}
}

// TestContextInsertFixedBytes adds context to records with fixed-size
// byte fields (trace and span ids, CTF arrays): the walk must step over
// their bytes, not read a length from them.
func TestContextInsertFixedBytes(t *testing.T) {
	ec := ctf.EventClass{ID: 2, Name: "test:span", Truncation: true, Fields: []ctf.Field{
		{Name: "trace_id", Type: ctf.FieldType{Kind: ctf.Bytes, Bits: 128}},
		{Name: "span_id", Type: ctf.FieldType{Kind: ctf.Bytes, Bits: 64}},
		{Name: "name", Type: ctf.FieldType{Kind: ctf.String}}}}
	tid := []byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10")
	var recs []byte
	for i := range 3 {
		var err error
		recs, err = ctf.AppendRecord(recs, &ec, uint64(i), []ctf.Value{ctf.BytesValue(tid), ctf.BytesValue(tid[:8]), ctf.StringValue("op")}, 0)
		if err != nil {
			t.Fatal(err)
		}
	}
	c := newEventContext([]string{ctxPID}, wire.Hello{PID: 77, Program: "app"})
	c.addClasses([]ctf.EventClass{ec})
	out, err := c.insert(0, recs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w, err := ctf.Create(dir, ctf.TraceInfo{Clock: ctf.Clock{Name: "monotonic", Frequency: 1e9}, EventContext: c.fields})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddEventClass(ec); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(0, ctf.PacketInfo{BeginTS: 0, EndTS: 2}, out); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Context[0].Int != 77 || string(ev.Fields[0].Bytes) != string(tid) || string(ev.Fields[2].Bytes) != "op" {
			t.Errorf("event %d: context %v fields %v", n, ev.Context, ev.Fields)
		}
		n++
	}
	if n != 3 {
		t.Errorf("read %d events, want 3", n)
	}
}

// BenchmarkContext measures what each context field adds per event, as
// tracemark writes a packet: "none" is the copy of the packet alone.
func BenchmarkContext(b *testing.B) {
	const n = 1024
	recs, ec := benchPacket(b, n)
	tidRecs := withVTID(b, recs, &ec, func(i int) uint32 { return uint32(1000 + i%4) })
	for _, names := range [][]string{nil, {ctxPID}, {ctxPID, ctxProcname}, {ctxPID, ctxProcname, ctxCPU},
		{ctxVTID}, {ctxTID}, {ctxTID, ctxVTID}, {ctxPID, ctxTID}, {"tid-mapped"}} {
		name := "none"
		if names != nil {
			name = fmt.Sprint(names)
		}
		b.Run(name, func(b *testing.B) {
			var buf []byte
			recs := recs
			h := wire.Hello{PID: 4242, Program: "tm-target"}
			mapped := slices.Equal(names, []string{"tid-mapped"})
			if mapped {
				names = []string{ctxTID}
			}
			if wantsThreadID(names) {
				recs, h.ThreadID = tidRecs, true
			}
			c := newEventContext(names, h)
			if c != nil {
				c.addClasses([]ctf.EventClass{ec})
			}
			if mapped { // a process in another PID namespace
				c.host = &tidMap{ids: map[uint32]uint32{1000: 1, 1001: 2, 1002: 3, 1003: 4}, scanned: time.Now()}
			}
			b.SetBytes(int64(len(recs)))
			for b.Loop() {
				if c == nil {
					buf = append(buf[:0], recs...)
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

// withVTID returns records as a session with thread ids writes them: the
// records of recs (of class ec) with vtid(i) after the header of the i-th.
func withVTID(tb testing.TB, recs []byte, ec *ctf.EventClass, vtid func(int) uint32) []byte {
	var out []byte
	for i, pos := 0, 0; pos < len(recs); i++ {
		n, err := ctf.RecordSize(recs[pos:], ec)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, recs[pos:pos+ctf.EventHeaderSize]...)
		out = binary.LittleEndian.AppendUint32(out, vtid(i))
		out = append(out, recs[pos+ctf.EventHeaderSize:pos+n]...)
		pos += n
	}
	return out
}

// TestContextInsertThreadID moves the thread id that records carry into
// the context, beside the packet's fields, as vtid and mapped as tid.
func TestContextInsertThreadID(t *testing.T) {
	plain, ec := benchPacket(t, 3)
	recs := withVTID(t, plain, &ec, func(i int) uint32 { return uint32(100 + i) })
	h := wire.Hello{PID: 77, Program: "app", ThreadID: true}
	c := newEventContext([]string{ctxCPU, ctxTID, ctxPID, ctxVTID}, h)
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
		got := [4]uint64{ev.Context[0].Uint, ev.Context[1].Uint, uint64(ev.Context[2].Int), ev.Context[3].Uint}
		if got != want[i] || ev.Fields[0].Int != int64(i) || string(ev.Fields[1].Bytes) != "GET /api" {
			t.Errorf("event %d: context %v fields %v, want context %v", i, got, ev.Fields, want[i])
		}
	}

	// vtid alone is where the records have it: they are written as they
	// come. A stream with thread ids that asked for nothing gets vtid.
	for _, names := range [][]string{{ctxVTID}, nil} {
		c := newEventContext(names, h)
		c.addClasses([]ctf.EventClass{ec})
		out, err := c.insert(5, recs)
		if err != nil || &out[0] != &recs[0] {
			t.Fatalf("--context %v: the records were rewritten (%v)", names, err)
		}
		evs := readBack(t, c, ec, out)
		if len(evs) != 3 || evs[2].Context[0].Uint != 102 || evs[2].Fields[0].Int != 2 {
			t.Fatalf("--context %v: read %d events, the last %v %v", names, len(evs), evs[len(evs)-1].Context, evs[len(evs)-1].Fields)
		}
	}
	// Records without thread ids cannot give them.
	if err := newEventContext([]string{ctxTID}, wire.Hello{PID: 77}).check(wire.Hello{PID: 77}); err == nil {
		t.Error("tid from a stream without thread ids: no error")
	}
	// Same namespace: tid is vtid.
	c = newEventContext([]string{ctxTID}, h).inNamespace(77, 77)
	c.addClasses([]ctf.EventClass{ec})
	if out, err = c.insert(0, recs); err != nil {
		t.Fatal(err)
	}
	if evs := readBack(t, c, ec, out); len(evs) != 3 || evs[1].Context[0].Uint != 101 {
		t.Fatalf("tid in the same namespace: %v", evs[1].Context)
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
	if got := m.tid(9); got != 0 {
		t.Fatalf("a thread unknown right after a scan: tid %d, want 0 until the next scan", got)
	}
	m.scanned = time.Time{} // as if tidRescan had passed
	if got := m.tid(9); got != 5102 {
		t.Fatalf("a thread that started later: tid %d, want 5102", got)
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

// TestThreadIDAgentRefusal: an agent that predates thread ids refuses the
// request field; tracemark says what to do.
func TestThreadIDAgentRefusal(t *testing.T) {
	old := wire.Errorf(wire.CodeUnknownField, "%s", `unknown field "thread_id"`)
	err := errThreadIDAgent(old)
	if !errors.Is(err, old) || !strings.Contains(err.Error(), "predates thread ids") || !strings.Contains(err.Error(), "rebuild") {
		t.Fatalf("errThreadIDAgent: %v", err)
	}
	other := wire.Errorf(wire.CodeUnknownField, "%s", `unknown field "checked"`)
	if errThreadIDAgent(other) != other {
		t.Fatal("errThreadIDAgent rewrote an error about another field")
	}
}
