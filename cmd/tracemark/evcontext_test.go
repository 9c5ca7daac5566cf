package main

import (
	"fmt"
	"testing"

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
	for _, names := range [][]string{nil, {ctxPID}, {ctxPID, ctxProcname}, {ctxPID, ctxProcname, ctxCPU}} {
		name := "none"
		if names != nil {
			name = fmt.Sprint(names)
		}
		b.Run(name, func(b *testing.B) {
			var buf []byte
			c := newEventContext(names, wire.Hello{PID: 4242, Program: "tm-target"})
			if c != nil {
				c.addClasses([]ctf.EventClass{ec})
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
