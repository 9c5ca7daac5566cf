package otlp

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/otlptest"
)

// A packet's run of records of a class of numbers and strings, which
// fastRecords encodes, is encoded byte for byte as a call of Add per
// record: integers of every width, unsigned values (some sent as text),
// bools, floats of both widths, strings short and long, trace and span
// ids (one of the wrong length), fields beyond the class's (not sent),
// trailers, event contexts, runs longer than a
// chunk, and records of 128 bytes or more, which it leaves to the planned
// path in the middle of a run.
func TestFastSameAsPlanned(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	r := rand.New(rand.NewPCG(7, 8))
	given, added := e.NewLogBuilder(), e.NewLogBuilder()
	type gen struct {
		kind string
		t    ctf.FieldType
		val  func() ctf.Value
	}
	gens := []gen{
		{"int64", ctf.FieldType{Kind: ctf.Int, Bits: 64}, func() ctf.Value { return ctf.IntValue(int64(r.Uint64()) >> r.IntN(64)) }},
		{"int32", ctf.FieldType{Kind: ctf.Int, Bits: 32}, func() ctf.Value { return ctf.IntValue(int64(int32(r.Uint32()))) }},
		{"int16", ctf.FieldType{Kind: ctf.Int, Bits: 16}, func() ctf.Value { return ctf.IntValue(int64(int16(r.Uint32()))) }},
		{"int8", ctf.FieldType{Kind: ctf.Int, Bits: 8}, func() ctf.Value { return ctf.IntValue(int64(int8(r.Uint32()))) }},
		{"uint8", ctf.FieldType{Kind: ctf.Uint, Bits: 8}, func() ctf.Value { return ctf.UintValue(uint64(uint8(r.Uint32()))) }},
		{"uint64", ctf.FieldType{Kind: ctf.Uint, Bits: 64}, func() ctf.Value {
			if r.IntN(50) == 0 {
				return ctf.UintValue(math.MaxInt64 + 1 + r.Uint64()>>1) // sent as text
			}
			return ctf.UintValue(r.Uint64() >> (1 + r.IntN(63)))
		}},
		{"bool", ctf.FieldType{Kind: ctf.Uint, Bits: 8}, func() ctf.Value { return ctf.UintValue(uint64(r.IntN(3))) }},
		{"float64", ctf.FieldType{Kind: ctf.Float, Bits: 64}, func() ctf.Value { return ctf.FloatValue(r.NormFloat64() * 1e6) }},
		{"float32", ctf.FieldType{Kind: ctf.Float, Bits: 32}, func() ctf.Value { return ctf.FloatValue(float64(float32(r.NormFloat64()))) }},
		{"trace_id", ctf.FieldType{Kind: ctf.Bytes, Bits: 128}, func() ctf.Value { return ctf.BytesValue(randBytes(r, 16)) }},
		{"span_id", ctf.FieldType{Kind: ctf.Bytes, Bits: 64}, func() ctf.Value { return ctf.BytesValue(randBytes(r, 8)) }},
		{"trace_id", ctf.FieldType{Kind: ctf.Bytes, Bits: 64}, func() ctf.Value { return ctf.BytesValue(randBytes(r, 8)) }}, // not 16 bytes: no id
		{"string", ctf.FieldType{Kind: ctf.String}, func() ctf.Value {
			if r.IntN(30) == 0 {
				return ctf.StringValue(strings.Repeat("x", 8+r.IntN(200))) // long: the planned path's
			}
			return ctf.StringValue(strings.Repeat("é", 4)[:r.IntN(8)])
		}},
	}
	for i := range 400 {
		c := &Class{Name: "fast:" + strings.Repeat("m", r.IntN(10)), Scope: Scope{Name: "s" + string(rune('a'+r.IntN(3)))}}
		ec := ctf.EventClass{ID: uint16(1 + r.IntN(3)), Name: "a:b", Truncation: r.IntN(3) == 0}
		var gs []gen
		nf := r.IntN(7)
		for j := range nf {
			g := gens[r.IntN(len(gens))]
			name := strings.Repeat("k", 1+j+r.IntN(8))
			if j < nf-r.IntN(2) { // the last field may be beyond the class's
				c.Fields = append(c.Fields, Field{Name: name, Kind: g.kind})
			}
			ec.Fields = append(ec.Fields, ctf.Field{Name: name, Type: g.t})
			gs = append(gs, g)
		}
		lay := CTFRecords{ID: ec.ID, Context: r.IntN(3) * 4, Epoch: r.Int64N(1 << 62), Observed: r.Int64(), Trailer: ec.Truncation}
		var data []byte
		var starts []int
		for range 1 + r.IntN(200) {
			var vals []ctf.Value
			for _, g := range gs {
				vals = append(vals, g.val())
			}
			trunc := uint8(0)
			if ec.Truncation && r.IntN(4) == 0 {
				trunc = uint8(r.Uint32())
			}
			rec, err := ctf.AppendRecord(nil, &ec, r.Uint64N(1<<40), vals, trunc)
			if err != nil {
				t.Fatal(err)
			}
			starts = append(starts, len(data))
			data = append(data, rec[:ctf.EventHeaderSize]...)
			data = append(data, randBytes(r, lay.Context)...)
			data = append(data, rec[ctf.EventHeaderSize:]...)
		}
		types := fieldTypes(&ec)
		encG := given.CTFEncoder(c, types)
		for k, at := range starts {
			ts := lay.Epoch + int64(binary.LittleEndian.Uint64(data[at+2:]))
			if _, err := encG.Add(ts, lay.Observed, data[at+ctf.EventHeaderSize+lay.Context:], lay.Trailer); err != nil {
				t.Fatalf("run %d: record %d: %v", i, k, err)
			}
		}
		enc := added.CTFEncoder(c, types)
		if !enc.pl.fast {
			t.Fatalf("run %d: the class's plan does not take the fast loop", i)
		}
		if k, n, err := enc.AddRecords(data, &lay); k != len(starts) || n != len(data) || err != nil {
			t.Fatalf("run %d: AddRecords = %d records, %d bytes, %v; want %d, %d", i, k, n, err, len(starts), len(data))
		}
		if i%20 == 19 {
			compareBuilders(t, given, added)
		}
	}
	compareBuilders(t, given, added)
}

// Whatever bytes a packet holds, AddRecords on a class of the fast loop
// neither panics nor reads beyond them, and encodes what a call of Add
// per record would, up to the first record Add refuses.
func FuzzFastRecords(f *testing.F) {
	ec := ctf.EventClass{ID: 1, Name: "f:f", Fields: []ctf.Field{
		{Name: "i", Type: ctf.FieldType{Kind: ctf.Int, Bits: 32}},
		{Name: "s", Type: ctf.FieldType{Kind: ctf.String}},
		{Name: "u", Type: ctf.FieldType{Kind: ctf.Uint, Bits: 16}},
		{Name: "f", Type: ctf.FieldType{Kind: ctf.Float, Bits: 32}},
		{Name: "t", Type: ctf.FieldType{Kind: ctf.Bytes, Bits: 128}},
		{Name: "p", Type: ctf.FieldType{Kind: ctf.Bytes, Bits: 64}}}}
	for _, vals := range [][]ctf.Value{
		{ctf.IntValue(-5), ctf.StringValue("hello"), ctf.UintValue(7), ctf.FloatValue(0.5), ctf.BytesValue(make([]byte, 16)), ctf.BytesValue([]byte{1, 2, 3, 4, 5, 6, 7, 8})},
		{ctf.IntValue(1 << 30), ctf.StringValue(strings.Repeat("long", 9)), ctf.UintValue(65535), ctf.FloatValue(-2), ctf.BytesValue(make([]byte, 16)), ctf.BytesValue(make([]byte, 8))},
	} {
		var data []byte
		for range 3 {
			rec, err := ctf.AppendRecord(nil, &ec, 12345, vals, 0)
			if err != nil {
				f.Fatal(err)
			}
			data = append(data, rec...)
		}
		f.Add(data, false)
		f.Add(data[:len(data)-3], true)
	}
	e, err := New("http://collector.invalid:4318")
	if err != nil {
		f.Fatal(err)
	}
	c := &Class{Name: ec.Name, Fields: []Field{{Name: "i", Kind: "int32"}, {Name: "s", Kind: "string"}, {Name: "u", Kind: "uint16"}, {Name: "f", Kind: "float32"},
		{Name: "t", Kind: "trace_id"}, {Name: "p", Kind: "span_id"}}}
	types := fieldTypes(&ec)
	f.Fuzz(func(t *testing.T, data []byte, trailer bool) {
		given, added := e.NewLogBuilder(), e.NewLogBuilder()
		lay := CTFRecords{ID: 1, Epoch: 1e18, Observed: 2e18, Trailer: trailer}
		enc := added.CTFEncoder(c, types)
		k, n, errA := enc.AddRecords(data, &lay)
		if n > len(data) || k < 0 {
			t.Fatalf("AddRecords = %d records, %d bytes of %d", k, n, len(data))
		}
		encG := given.CTFEncoder(c, types)
		off := 0
		for range k {
			ts := lay.Epoch + int64(binary.LittleEndian.Uint64(data[off+2:]))
			m, err := encG.Add(ts, lay.Observed, data[off+ctf.EventHeaderSize:], trailer)
			if err != nil {
				t.Fatalf("Add refused record at %d that AddRecords took: %v", off, err)
			}
			off += ctf.EventHeaderSize + m
		}
		if off != n {
			t.Fatalf("Add per record took %d bytes, AddRecords %d", off, n)
		}
		if errA != nil && len(data)-n >= ctf.EventHeaderSize && binary.LittleEndian.Uint16(data[n:]) == 1 {
			if _, err := encG.Add(0, 0, data[n+ctf.EventHeaderSize:], trailer); err == nil {
				t.Fatalf("AddRecords stopped with %v at a record Add takes", errA)
			}
		}
		compareBuildersNoEmpty(t, given, added)
	})
}
