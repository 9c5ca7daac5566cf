package ctf

import (
	"bytes"
	"strings"
	"testing"
)

// Fixed-size byte arrays (trace and span ids) round-trip through the
// writer and the reader, and Babeltrace reads them as arrays.
func TestFixedBytes(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, testInfo())
	if err != nil {
		t.Fatal(err)
	}
	ec := EventClass{ID: 1, Name: "rpc:done", Fields: []Field{
		{Name: "trace_id", Type: FieldType{Kind: Bytes, Bits: 128}},
		{Name: "span_id", Type: FieldType{Kind: Bytes, Bits: 64}},
		{Name: "status", Type: FieldType{Kind: Int, Bits: 32}},
	}}
	if err := w.AddEventClass(ec); err != nil {
		t.Fatal(err)
	}
	tid := []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	sid := []byte{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	rec, err := AppendRecord(nil, &ec, 100, []Value{BytesValue(tid), BytesValue(sid), IntValue(-7)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != EventHeaderSize+16+8+4 {
		t.Errorf("record of %d bytes: the arrays must have no length", len(rec))
	}
	if _, err := AppendRecord(nil, &ec, 100, []Value{BytesValue(tid[:15]), BytesValue(sid), IntValue(0)}, 0); err == nil {
		t.Error("a 15-byte value for a 16-byte field was accepted")
	}
	if err := w.WritePacket(0, PacketInfo{BeginTS: 100, EndTS: 100}, rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Classes()[0].Fields; got[0].Type.String() != "bytes[16]" || got[1].Type != (FieldType{Kind: Bytes, Bits: 64}) {
		t.Errorf("classes read back: %v", got)
	}
	ev, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ev.Fields[0].Bytes, tid) || !bytes.Equal(ev.Fields[1].Bytes, sid) || ev.Fields[2].Int != -7 {
		t.Errorf("event read back: %v", ev.Fields)
	}
	stdout, stderr := babeltrace(t, dir)
	if stderr != "" {
		t.Errorf("babeltrace2: %s", stderr)
	}
	if !strings.Contains(stdout, "trace_id = [ [0] = 75, [1] = 249,") || !strings.Contains(stdout, "[7] = 183 ], status = -7") {
		t.Errorf("babeltrace2 output: %s", stdout)
	}
}

func TestFixedBytesValidation(t *testing.T) {
	for _, ft := range []FieldType{{Kind: Bytes, Bits: 4}, {Kind: Bytes, Bits: 8 * (MaxFixedBytes + 1)}, {Kind: Bytes, Bits: -8}} {
		ec := EventClass{ID: 1, Name: "x", Fields: []Field{{Name: "a", Type: ft}}}
		if err := ec.Validate(); err == nil {
			t.Errorf("%v accepted", ft)
		}
	}
}
