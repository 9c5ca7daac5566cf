package otlp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/otlptest"
)

// ctfTypeOf is the CTF type a field of TestAddCTFSameAsBegin records
// its value as: the widest of its kind, a fixed array for 16 bytes.
func ctfTypeOf(v ctf.Value, fixed bool) ctf.FieldType {
	switch v.Kind {
	case ctf.Bytes:
		if fixed {
			return ctf.FieldType{Kind: ctf.Bytes, Bits: 8 * len(v.Bytes)}
		}
		return ctf.FieldType{Kind: ctf.Bytes}
	case ctf.String:
		return ctf.FieldType{Kind: ctf.String}
	}
	return ctf.FieldType{Kind: v.Kind, Bits: 64}
}

// A record added from its CTF bytes (AddCTF, or a CTFEncoder) is encoded byte for byte as
// the same values given field by field (Begin, Int, ..., End): every
// field kind and role of TestBeginSameAsAdd, integers of each width,
// float32, fixed arrays and sequences, truncation trailers, and records
// followed by other bytes (AddCTF says where its record ends).
func TestAddCTFSameAsBegin(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	r := rand.New(rand.NewPCG(3, 4))
	given, added := e.NewLogBuilder(), e.NewLogBuilder()
	for i := range 3000 {
		c := &Class{Name: strings.Repeat("m", 1+r.IntN(20)), Scope: Scope{Name: "s" + string(rune('a'+r.IntN(3)))}}
		ec := ctf.EventClass{ID: 1, Name: "a:b", Truncation: r.IntN(2) == 0}
		var vals []ctf.Value
		for j := range r.IntN(9) {
			fk := fieldKinds[r.IntN(len(fieldKinds))]
			v := fk.val(r)
			ft := ctfTypeOf(v, fk.kind == "trace_id" && len(v.Bytes) == 16)
			switch {
			case v.Kind == ctf.Int && r.IntN(2) == 0:
				// A narrower integer: its value as the field holds it.
				ft.Bits = 8 << r.IntN(3)
				shift := 64 - uint(ft.Bits)
				v.Int = v.Int << shift >> shift
			case v.Kind == ctf.Uint && r.IntN(2) == 0:
				ft.Bits = 8 << r.IntN(3)
				v.Uint &= 1<<ft.Bits - 1
			case v.Kind == ctf.Float && r.IntN(2) == 0:
				ft.Bits = 32
				v.Float = float64(float32(v.Float))
			}
			name := strings.Repeat("k", 1+j+r.IntN(20)) // keys short and long
			c.Fields = append(c.Fields, Field{Name: name, Kind: fk.kind})
			ec.Fields = append(ec.Fields, ctf.Field{Name: name, Type: ft})
			vals = append(vals, v)
		}
		trunc := uint8(0)
		if ec.Truncation && r.IntN(2) == 0 {
			trunc = uint8(r.Uint32())
		}
		rec, err := ctf.AppendRecord(nil, &ec, 1, vals, trunc)
		if err != nil {
			t.Fatal(err)
		}
		fields := rec[ctf.EventHeaderSize:]
		rest := []byte{7, 0, 7}[:r.IntN(4)]
		ts, obs := r.Int64(), r.Int64()
		var n int
		if r.IntN(2) == 0 {
			n, err = added.AddCTF(c, fieldTypes(&ec), ts, obs, append(fields, rest...), ec.Truncation)
		} else {
			enc := added.CTFEncoder(c, fieldTypes(&ec))
			n, err = enc.Add(ts, obs, append(fields, rest...), ec.Truncation)
		}
		if err != nil || n != len(fields) {
			t.Fatalf("record %d: AddCTF or CTFEncoder.Add = %d, %v; want %d, nil", i, n, err, len(fields))
		}
		// The values as the record holds them (a string is cut at a
		// NUL), given field by field.
		var dec ctf.RecordDecoder
		var ev ctf.Event
		if err := dec.AddClasses(ec); err != nil {
			t.Fatal(err)
		}
		if _, err := dec.Decode(rec, &ev); err != nil {
			t.Fatal(err)
		}
		given.Begin(c, ts, obs)
		give(given, ev.Fields)
		given.End(ev.Truncated)
		if i%100 == 99 {
			compareBuilders(t, given, added)
		}
	}
	compareBuilders(t, given, added)
}

func fieldTypes(ec *ctf.EventClass) []ctf.FieldType {
	var ts []ctf.FieldType
	for _, f := range ec.Fields {
		ts = append(ts, f.Type)
	}
	return ts
}

// A record cut anywhere, or with a string left unterminated, is an
// error naming the event and the field (or the trailer), and nothing of
// it is encoded: the records before it stay, and the next record is
// encoded as if it had not been tried.
func TestAddCTFMalformed(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	c := &Class{Name: "x:y", Fields: []Field{{Name: "n", Kind: "int32"}, {Name: "s", Kind: "string"}, {Name: "b", Kind: "bytes"}}}
	ec := ctf.EventClass{ID: 1, Name: "x:y", Truncation: true, Fields: []ctf.Field{
		{Name: "n", Type: ctf.FieldType{Kind: ctf.Int, Bits: 32}}, {Name: "s", Type: ctf.FieldType{Kind: ctf.String}},
		{Name: "b", Type: ctf.FieldType{Kind: ctf.Bytes}}}}
	vals := []ctf.Value{ctf.IntValue(-5), ctf.StringValue("hello"), ctf.BytesValue([]byte{1, 2, 3})}
	rec, err := ctf.AppendRecord(nil, &ec, 1, vals, 0)
	if err != nil {
		t.Fatal(err)
	}
	fields := rec[ctf.EventHeaderSize:]
	want := e.NewLogBuilder()
	for range 2 {
		want.Begin(c, 10, 20)
		give(want, vals)
		want.End(0)
	}
	b := e.NewLogBuilder()
	for cut := range len(fields) {
		if _, err := b.AddCTF(c, fieldTypes(&ec), 10, 20, fields[:cut], true); !errors.Is(err, ctf.ErrCorrupt) {
			t.Fatalf("cut at %d of %d: %v, want an error wrapping ctf.ErrCorrupt", cut, len(fields), err)
		} else if msg := err.Error(); !strings.Contains(msg, `event "x:y"`) || !strings.Contains(msg, "field") && !strings.Contains(msg, "trailer") {
			t.Errorf("cut at %d: %q does not name the event and the field or trailer", cut, msg)
		}
		if b.Len() != 0 {
			t.Fatalf("cut at %d: %d records encoded", cut, b.Len())
		}
	}
	if _, err := b.AddCTF(c, fieldTypes(&ec), 10, 20, fields, true); err != nil {
		t.Fatal(err)
	}
	noNUL := append([]byte{1, 0, 0, 0}, "hello"...)
	if _, err := b.AddCTF(c, fieldTypes(&ec), 10, 20, noNUL, true); err == nil || !strings.Contains(err.Error(), `field "s": string not terminated`) {
		t.Fatalf("unterminated string: %v", err)
	}
	if _, err := b.AddCTF(c, fieldTypes(&ec), 10, 20, fields, true); err != nil {
		t.Fatal(err)
	}
	compareBuilders(t, want, b)
}

// A field type no class may have is an error, not a panic or a value
// read wrongly, whether the queue has room or not.
func TestAddCTFInvalidTypes(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	c := &Class{Name: "x", Fields: []Field{{Name: "n", Kind: "int64"}}}
	bad := []ctf.FieldType{{Kind: ctf.Int, Bits: 24}, {Kind: ctf.Int}, {Kind: ctf.Float, Bits: 16}, {Kind: ctf.Bytes, Bits: 12}, {Kind: ctf.String, Bits: 8}, {Kind: ctf.Kind(99), Bits: 8}}
	for _, closed := range []bool{false, true} {
		if closed {
			e.Close(context.Background())
		}
		b := e.NewLogBuilder()
		for _, ft := range bad {
			n, err := b.AddCTF(c, []ctf.FieldType{ft}, 1, 2, []byte{1, 2, 3}, false)
			if !errors.Is(err, ctf.ErrInvalidClass) || !strings.Contains(err.Error(), `field "n"`) {
				t.Errorf("AddCTF with field type %+v: %d, %v; want an error wrapping ctf.ErrInvalidClass naming the field", ft, n, err)
			}
		}
		if b.Len() != 0 {
			t.Errorf("%d events counted for records of invalid types", b.Len())
		}
	}
}

// A caller that reuses its slice of types, changing it in place after a
// record passed, gets the same errors: the types are checked as each
// record is read, not once per slice.
func TestAddCTFTypesChangedInPlace(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	c := &Class{Name: "x", Fields: []Field{{Name: "n", Kind: "int64"}}}
	b := e.NewLogBuilder()
	types := []ctf.FieldType{{Kind: ctf.Int, Bits: 8}}
	if _, err := b.AddCTF(c, types, 1, 2, []byte{1}, false); err != nil {
		t.Fatal(err)
	}
	for _, ft := range []ctf.FieldType{{Kind: ctf.Int, Bits: 24}, {Kind: ctf.Float, Bits: 16}, {Kind: ctf.Bytes, Bits: -8}, {Kind: ctf.Bytes, Bits: 12}, {Kind: ctf.Kind(99), Bits: 8}} {
		types[0] = ft
		if n, err := b.AddCTF(c, types, 1, 2, []byte{1, 2, 3}, false); !errors.Is(err, ctf.ErrInvalidClass) {
			t.Errorf("AddCTF with the slice changed to %+v: %d, %v; want an error wrapping ctf.ErrInvalidClass", ft, n, err)
		}
	}
	if b.Len() != 1 {
		t.Errorf("%d events, want the first only", b.Len())
	}
}

// With the queue full (here: the exporter closed), AddCTF encodes
// nothing but still reads the record through (its size, or its error),
// and the event counts as dropped.
func TestAddCTFQueueFull(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	c := &Class{Name: "x", Fields: []Field{{Name: "s", Kind: "string"}}}
	types := []ctf.FieldType{{Kind: ctf.String}}
	b := e.NewLogBuilder()
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := b.AddCTF(c, types, 1, 1, []byte("ab\x00cd"), false); n != 3 || err != nil {
		t.Fatalf("AddCTF with the queue full = %d, %v; want 3, nil", n, err)
	}
	if _, err := b.AddCTF(c, types, 1, 1, []byte("ab"), false); err == nil {
		t.Fatal("AddCTF of an unterminated string with the queue full: no error")
	}
	if b.n != 0 || b.skipped != 1 {
		t.Fatalf("%d encoded, %d skipped; want 0 and 1", b.n, b.skipped)
	}
	if d := e.Commit(b); d != 1 {
		t.Fatalf("Commit dropped %d, want 1", d)
	}
	// A run of records, read through the same way.
	rec := append(make([]byte, ctf.EventHeaderSize), "ab\x00"...)
	rec[0] = 7
	data := append(append(slices.Clone(rec), rec...), 8, 0)
	enc := b.CTFEncoder(c, types)
	if k, n, err := enc.AddRecords(data, &CTFRecords{ID: 7}); k != 2 || n != 2*len(rec) || err != nil {
		t.Fatalf("AddRecords with the queue full = %d, %d, %v; want 2, %d, nil", k, n, err, 2*len(rec))
	}
	if b.n != 0 || b.skipped != 2 {
		t.Fatalf("AddRecords: %d encoded, %d skipped; want 0 and 2", b.n, b.skipped)
	}
}

// Fields beyond the class's (the types list more than cl.Fields names)
// are read through and not sent, of every kind, as Begin leaves them
// out.
func TestAddCTFFieldsBeyondClass(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	c := &Class{Name: "x:y", Fields: []Field{{Name: "n", Kind: "int32"}}}
	ec := ctf.EventClass{ID: 1, Name: "x:y", Fields: []ctf.Field{
		{Name: "n", Type: ctf.FieldType{Kind: ctf.Int, Bits: 32}}, {Name: "s", Type: ctf.FieldType{Kind: ctf.String}},
		{Name: "f", Type: ctf.FieldType{Kind: ctf.Bytes, Bits: 64}}, {Name: "q", Type: ctf.FieldType{Kind: ctf.Bytes}},
		{Name: "u", Type: ctf.FieldType{Kind: ctf.Uint, Bits: 16}}}}
	vals := []ctf.Value{ctf.IntValue(-5), ctf.StringValue("hello"), ctf.BytesValue([]byte("12345678")), ctf.BytesValue([]byte{1, 2}), ctf.UintValue(7)}
	rec, err := ctf.AppendRecord(nil, &ec, 1, vals, 0)
	if err != nil {
		t.Fatal(err)
	}
	fields := rec[ctf.EventHeaderSize:]
	want, got := e.NewLogBuilder(), e.NewLogBuilder()
	want.Begin(c, 10, 20)
	give(want, vals)
	want.End(0)
	if n, err := got.AddCTF(c, fieldTypes(&ec), 10, 20, fields, false); n != len(fields) || err != nil {
		t.Fatalf("AddCTF = %d, %v; want %d, nil", n, err, len(fields))
	}
	compareBuilders(t, want, got)
}

// A record reserves room for itself, not for the rest of the packet it
// is read out of: a builder fed the records of a large packet one by one
// (as the CLI's transcoder does) holds buffers the size of what it
// encoded, not of a packet more for every record.
func TestAddCTFRoomPerRecord(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	c := &Class{Name: "x:y", Fields: []Field{{Name: "n", Kind: "int64"}, {Name: "s", Kind: "string"}}}
	ec := ctf.EventClass{ID: 1, Name: "x:y", Fields: []ctf.Field{
		{Name: "n", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}}, {Name: "s", Type: ctf.FieldType{Kind: ctf.String}}}}
	var packet []byte
	for i := range 1 << 15 {
		var err error
		if packet, err = ctf.AppendRecord(packet, &ec, uint64(i), []ctf.Value{ctf.IntValue(int64(i)), ctf.StringValue("hello")}, 0); err != nil {
			t.Fatal(err)
		}
	}
	b := e.NewLogBuilder()
	types := fieldTypes(&ec)
	for off := 0; off < len(packet); {
		n, err := b.AddCTF(c, types, 1, 2, packet[off+ctf.EventHeaderSize:], false)
		if err != nil {
			t.Fatal(err)
		}
		off += ctf.EventHeaderSize + n
		if off == ctf.EventHeaderSize+n {
			if got := cap(b.scopes[0].recs); got > 4<<10 {
				t.Fatalf("after one record of a %d-byte packet, the builder's buffer holds %d bytes", len(packet), got)
			}
		}
	}
	if got, used := cap(b.scopes[0].recs), len(b.scopes[0].recs); got > 2*used {
		t.Errorf("%d bytes encoded into a buffer of %d", used, got)
	}
}

// A run of records encoded by CTFEncoder.AddRecords, straight from a
// packet's bytes, is encoded byte for byte as a call of Add per record:
// records the plan takes and records it leaves to the general path
// (unsigned values sent as text, long strings) in one run, with an event
// context or none, and the run stops where it must: at a record of
// another id, at bytes too few for a header, at a record cut short
// (with Add's error, the records before it encoded).
func TestAddRecordsSameAsAdd(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	r := rand.New(rand.NewPCG(5, 6))
	given, added := e.NewLogBuilder(), e.NewLogBuilder()
	for i := range 1500 {
		c := &Class{Name: "run:" + strings.Repeat("m", r.IntN(12)), Scope: Scope{Name: "s" + string(rune('a'+r.IntN(3)))}}
		ec := ctf.EventClass{ID: uint16(1 + r.IntN(3)), Name: "a:b", Truncation: r.IntN(2) == 0}
		var gens []int
		for j := range r.IntN(7) {
			g := r.IntN(len(fieldKinds))
			fk := fieldKinds[g]
			ft := ctfTypeOf(fk.val(r), fk.kind == "trace_id" && r.IntN(2) == 0)
			switch ft.Kind {
			case ctf.Int, ctf.Uint:
				ft.Bits = 8 << r.IntN(4)
			case ctf.Float:
				ft.Bits = 32 << r.IntN(2)
			case ctf.Bytes:
				if ft.Bits > 0 {
					ft.Bits = 8 * 16
				}
			}
			name := strings.Repeat("k", 1+j+r.IntN(20))
			c.Fields = append(c.Fields, Field{Name: name, Kind: fk.kind})
			ec.Fields = append(ec.Fields, ctf.Field{Name: name, Type: ft})
			gens = append(gens, g)
		}
		lay := CTFRecords{ID: ec.ID, Context: r.IntN(3) * 4, Epoch: r.Int64N(1 << 62), Observed: r.Int64(), Trailer: ec.Truncation}
		var data []byte
		var starts []int
		for range 1 + r.IntN(12) {
			starts = append(starts, len(data))
			data = append(data, runRecord(t, r, &ec, gens, lay.Context)...)
		}
		want, wantN := len(starts), len(data) // what AddRecords encodes
		var wantErr bool
		switch r.IntN(4) {
		case 0: // a record of another id
			other := ec
			other.ID = ec.ID + 10
			data = append(data, runRecord(t, r, &other, gens, lay.Context)...)
		case 1: // a record cut short: an error, if it has fields
			rec := runRecord(t, r, &ec, gens, lay.Context)
			head := ctf.EventHeaderSize + lay.Context
			if len(rec) > head {
				starts = append(starts, len(data))
				data = append(data, rec[:head+r.IntN(len(rec)-head)]...)
				wantErr = true
			}
		case 2: // bytes too few for a header
			data = append(data, make([]byte, r.IntN(ctf.EventHeaderSize+lay.Context))...)
		}
		// Add, one record at a time.
		encG := given.CTFEncoder(c, fieldTypes(&ec))
		var errG error
		for k, at := range starts {
			ts := lay.Epoch + int64(binary.LittleEndian.Uint64(data[at+2:]))
			if _, errG = encG.Add(ts, lay.Observed, data[at+ctf.EventHeaderSize+lay.Context:], lay.Trailer); errG != nil {
				if !wantErr || k != want {
					t.Fatalf("run %d: record %d: %v", i, k, errG)
				}
			}
		}
		enc := added.CTFEncoder(c, fieldTypes(&ec))
		k, n, err := enc.AddRecords(data, &lay)
		switch {
		case k != want || n != wantN:
			t.Fatalf("run %d: AddRecords = %d records, %d bytes; want %d, %d", i, k, n, want, wantN)
		case wantErr && errG != nil && (err == nil || err.Error() != errG.Error()):
			t.Fatalf("run %d: AddRecords error %v, want Add's: %v", i, err, errG)
		case (!wantErr || errG == nil) && err != nil:
			t.Fatalf("run %d: AddRecords error %v", i, err)
		}
		if i%50 == 49 {
			compareBuilders(t, given, added)
		}
	}
	compareBuilders(t, given, added)
}

// runRecord returns a record of class ec with random values of the
// generators gens (fieldKinds), as its field types hold them, and an
// event context of ctx bytes after its header.
func runRecord(t *testing.T, r *rand.Rand, ec *ctf.EventClass, gens []int, ctx int) []byte {
	t.Helper()
	var vals []ctf.Value
	for j, g := range gens {
		v, ft := fieldKinds[g].val(r), ec.Fields[j].Type
		switch ft.Kind {
		case ctf.Int:
			shift := 64 - uint(ft.Bits)
			v.Int = v.Int << shift >> shift
		case ctf.Uint:
			if ft.Bits < 64 {
				v.Uint &= 1<<ft.Bits - 1
			}
		case ctf.Float:
			if ft.Bits == 32 {
				v.Float = float64(float32(v.Float))
			}
		case ctf.Bytes:
			if ft.Bits > 0 {
				v.Bytes = append(v.Bytes, make([]byte, 16)...)[:16]
			}
		}
		vals = append(vals, v)
	}
	trunc := uint8(0)
	if ec.Truncation && r.IntN(2) == 0 {
		trunc = uint8(r.Uint32())
	}
	rec, err := ctf.AppendRecord(nil, ec, r.Uint64N(1<<40), vals, trunc)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), rec[:ctf.EventHeaderSize]...)
	out = append(out, randBytes(r, ctx)...)
	return append(out, rec[ctf.EventHeaderSize:]...)
}

// Strings of every length around the in-line path's (up to 7 bytes, with
// 8 bytes of record from the string), under keys of every length the
// plan takes, followed by nothing, by a NUL-free word or by high bytes,
// are encoded as given one by one; AddRecords takes them in a run too.
func TestAddCTFShortStrings(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	given, added := e.NewLogBuilder(), e.NewLogBuilder()
	types := []ctf.FieldType{{Kind: ctf.String}, {Kind: ctf.Int, Bits: 8}}
	for keyLen := 1; keyLen <= 14; keyLen++ {
		c := &Class{Name: "s:s", Fields: []Field{{Name: strings.Repeat("k", keyLen), Kind: "string"}, {Name: "n", Kind: "int8"}}}
		for n := 0; n <= 20; n++ {
			for _, fill := range []byte{'a', 0x80, 0xff, 0x01} {
				for _, after := range [][]byte{nil, {7}, bytes.Repeat([]byte{fill}, 9)} {
					str := bytes.Repeat([]byte{fill}, n)
					rec := append(append(append(slices.Clone(str), 0), 5), after...)
					if k, err := added.AddCTF(c, types, 1, 2, rec, false); err != nil || k != n+2 {
						t.Fatalf("key %d, string %d×%x: AddCTF = %d, %v", keyLen, n, fill, k, err)
					}
					given.Begin(c, 1, 2)
					give(given, []ctf.Value{ctf.StringValue(string(str)), ctf.IntValue(5)})
					given.End(0)
				}
			}
		}
		compareBuilders(t, given, added)
	}
	enc := added.CTFEncoder(&Class{Name: "x"}, nil)
	if _, _, err := enc.AddRecords(make([]byte, 20), &CTFRecords{Context: -1}); err == nil {
		t.Error("AddRecords with a negative context: no error")
	}
}
