package ctf

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// randomClass returns an event class of up to 8 fields of random types.
func randomClass(r *rand.Rand, id uint16) EventClass {
	types := []FieldType{
		{Int, 8}, {Int, 16}, {Int, 32}, {Int, 64}, {Uint, 8}, {Uint, 16}, {Uint, 32}, {Uint, 64},
		{Float, 32}, {Float, 64}, {Kind: String}, {Kind: Bytes}, {Bytes, 64}, {Bytes, 128},
	}
	ec := EventClass{ID: id, Name: "rand:" + strconv.Itoa(int(id)), Truncation: r.IntN(2) == 0}
	if ec.Truncation {
		// Half with a truncated twin, half with the older layout (a
		// trailer on every record).
		ec.TruncatedID = id
		if r.IntN(2) == 0 {
			ec.TruncatedID = id | 0x8000
		}
	}
	for i := range r.IntN(MaxTruncationFields + 1) {
		ec.Fields = append(ec.Fields, Field{Name: "f" + strconv.Itoa(i), Type: types[r.IntN(len(types))]})
	}
	return ec
}

// randomValue returns a value of type ft; strings have no NUL.
func randomValue(r *rand.Rand, ft FieldType) Value {
	switch ft.Kind {
	case Int:
		shift := 64 - uint(ft.Bits)
		return IntValue(int64(r.Uint64()<<shift) >> shift)
	case Uint:
		return UintValue(r.Uint64() >> (64 - uint(ft.Bits)))
	case Float:
		if ft.Bits == 32 {
			return FloatValue(float64(math.Float32frombits(r.Uint32())))
		}
		return FloatValue(math.Float64frombits(r.Uint64()))
	case String:
		b := make([]byte, r.IntN(80))
		for i := range b {
			b[i] = byte(1 + r.IntN(255))
		}
		return Value{Kind: String, Bytes: b}
	}
	n := ft.Bits / 8
	if n == 0 {
		n = r.IntN(80)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return BytesValue(b)
}

// TestRecordDecoderRoundTrip encodes random records of random classes
// with AppendRecord, back to back as in a packet, and checks that Decode
// gives every value back and that RecordSize and Decode agree on where
// each record ends.
func TestRecordDecoderRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var d RecordDecoder
	var classes []EventClass
	for id := range uint16(40) {
		classes = append(classes, randomClass(r, id*3))
	}
	if err := d.AddClasses(classes...); err != nil {
		t.Fatal(err)
	}
	type rec struct {
		ec    *EventClass
		ts    uint64
		vals  []Value
		trunc uint8
		size  int
	}
	for range 200 {
		var packet []byte
		var want []rec
		for range 1 + r.IntN(30) {
			ec := &classes[r.IntN(len(classes))]
			rc := rec{ec: ec, ts: r.Uint64()}
			for _, f := range ec.Fields {
				rc.vals = append(rc.vals, randomValue(r, f.Type))
			}
			if ec.Truncation {
				rc.trunc = uint8(r.Uint32())
			}
			n := len(packet)
			var err error
			if packet, err = AppendRecord(packet, ec, rc.ts, rc.vals, rc.trunc); err != nil {
				t.Fatal(err)
			}
			rc.size = len(packet) - n
			want = append(want, rc)
		}
		var ev Event
		off := 0
		for i, w := range want {
			size, err := RecordSize(packet[off:], w.ec)
			if err != nil || size != w.size {
				t.Fatalf("record %d of %s: RecordSize = %d, %v; want %d", i, w.ec.Name, size, err, w.size)
			}
			// From every field whose offset is fixed, RecordSizeFrom agrees.
			at := EventHeaderSize
			for f := 0; f <= len(w.ec.Fields); f++ {
				if size, err := RecordSizeFrom(packet[off:], w.ec, f, at); err != nil || size != w.size {
					t.Fatalf("record %d of %s: RecordSizeFrom field %d at %d = %d, %v; want %d", i, w.ec.Name, f, at, size, err, w.size)
				}
				if f == len(w.ec.Fields) || w.ec.Fields[f].Type.Kind == String || w.ec.Fields[f].Type.Kind == Bytes && w.ec.Fields[f].Type.Bits == 0 {
					break
				}
				at += w.ec.Fields[f].Type.Bits / 8
			}
			n, err := d.Decode(packet[off:], &ev)
			if err != nil || n != w.size {
				t.Fatalf("record %d of %s: Decode = %d, %v; want %d", i, w.ec.Name, n, err, w.size)
			}
			if ev.Class.ID != w.ec.ID || ev.Cycles != w.ts || ev.Truncated != w.trunc || len(ev.Fields) != len(w.vals) {
				t.Fatalf("record %d: class %d, ts %d, truncated %#x, %d fields; want %d, %d, %#x, %d",
					i, ev.Class.ID, ev.Cycles, ev.Truncated, len(ev.Fields), w.ec.ID, w.ts, w.trunc, len(w.vals))
			}
			for j, v := range ev.Fields {
				if !v.Equal(w.vals[j]) {
					t.Fatalf("record %d of %s field %d: %v, want %v", i, w.ec.Name, j, v, w.vals[j])
				}
			}
			off += n
		}
		if off != len(packet) {
			t.Fatalf("decoded %d of %d bytes", off, len(packet))
		}
	}
}

// TestRecordDecoderMalformed cuts records at every byte and corrupts
// their ids and lengths: every error wraps ErrCorrupt, and none panics.
func TestRecordDecoderMalformed(t *testing.T) {
	ec := EventClass{ID: 2, Name: "a:b", Truncation: true, Fields: []Field{
		{Name: "s", Type: FieldType{Kind: String}}, {Name: "n", Type: FieldType{Uint, 16}},
		{Name: "b", Type: FieldType{Kind: Bytes}}, {Name: "id", Type: FieldType{Bytes, 64}}}}
	var d RecordDecoder
	if err := d.AddClasses(ec); err != nil {
		t.Fatal(err)
	}
	rec, err := AppendRecord(nil, &ec, 5, []Value{StringValue("hi"), UintValue(7), BytesValue([]byte("xyz")), BytesValue(make([]byte, 8))}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	for n := range len(rec) {
		if _, err := d.Decode(rec[:n], &ev); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Decode of %d of %d bytes: %v", n, len(rec), err)
		}
		if _, err := RecordSize(rec[:n], &ec); !errors.Is(err, ErrCorrupt) {
			t.Errorf("RecordSize of %d of %d bytes: %v", n, len(rec), err)
		}
	}
	unknown := bytes.Clone(rec)
	unknown[0] = 9
	if _, err := d.Decode(unknown, &ev); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Decode of an unknown class: %v", err)
	}
	long := bytes.Clone(rec)
	long[EventHeaderSize+3+2] = 0xff // the bytes field's length
	if _, err := d.Decode(long, &ev); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Decode with a length past the end: %v", err)
	}
	if n, err := d.Decode(rec, &ev); err != nil || n != len(rec) || ev.Class.Name != "a:b" {
		t.Errorf("Decode = %d, %v", n, err)
	}
	if d.Class(2) == nil || d.Class(1) != nil || d.Class(9999) != nil {
		t.Error("Class does not find what was added, or finds what was not")
	}
	bad := EventClass{ID: 3, Name: "a:c", Fields: []Field{{Name: "x", Type: FieldType{Int, 7}}}}
	if err := d.AddClasses(bad); !errors.Is(err, ErrInvalidClass) {
		t.Errorf("AddClasses of an int7 field: %v", err)
	}
}

// BenchmarkRecordSize walks a packet of 3-field records (two int64 and a
// 16-byte string) as a drain does.
func BenchmarkRecordSize(b *testing.B) {
	ec := EventClass{ID: 1, Name: "bench:walk", Truncation: true, Fields: []Field{
		{Name: "status", Type: FieldType{Int, 64}}, {Name: "bytes", Type: FieldType{Int, 64}}, {Name: "path", Type: FieldType{Kind: String}}}}
	var packet []byte
	records := 0
	for len(packet) < 64<<10 {
		packet, _ = AppendRecord(packet, &ec, 1, []Value{IntValue(200), IntValue(1234), StringValue("/api/users/12345")}, 0)
		records++
	}
	for b.Loop() {
		for off := 0; off < len(packet); {
			n, err := RecordSize(packet[off:], &ec)
			if err != nil {
				b.Fatal(err)
			}
			off += n
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(records), "ns/record")
}

// A TruncatedID of 0 is the older layout (a trailer on every record), as
// the protocol reads it; replacing a class with a twin drops its twin id.
func TestRecordDecoderTwinIDs(t *testing.T) {
	var d RecordDecoder
	old := EventClass{ID: 3, Name: "a:b", Truncation: true, Fields: []Field{{Name: "s", Type: FieldType{Kind: String}}}}
	if err := d.AddClasses(old); err != nil {
		t.Fatal(err)
	}
	rec, err := AppendRecord(nil, &old, 1, []Value{StringValue("x")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	if n, err := d.Decode(rec, &ev); err != nil || n != len(rec) || n != EventHeaderSize+3 {
		t.Fatalf("a record of a class with TruncatedID 0: %d bytes, %v; want %d with the trailer", n, err, EventHeaderSize+3)
	}
	twin := old
	twin.TruncatedID = 3 | 0x8000
	if err := d.AddClasses(twin); err != nil {
		t.Fatal(err)
	}
	other := EventClass{ID: 4, Name: "a:c", Truncation: true, TruncatedID: 4 | 0x8000, Fields: old.Fields}
	if err := d.AddClasses(other); err != nil {
		t.Fatal(err)
	}
	plain := EventClass{ID: 3, Name: "a:b", Fields: old.Fields}
	if err := d.AddClasses(plain); err != nil {
		t.Fatal(err)
	}
	if c := d.Class(3 | 0x8000); c != nil {
		t.Errorf("the twin id of a replaced class still decodes as %q", c.Name)
	}
	if c := d.Class(4 | 0x8000); c == nil || c.Name != "a:c" {
		t.Errorf("another class's twin id: %v", c)
	}
}
