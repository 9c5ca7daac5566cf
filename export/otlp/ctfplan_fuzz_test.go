package otlp

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/otlptest"
)

// decodeForGive decodes rec by types into values (as the record holds
// them) and the trailer, with package ctf's decoder, or false if it does
// not hold them.
func decodeForGive(types []ctf.FieldType, rec []byte, trailer bool) ([]ctf.Value, uint8, int, bool) {
	ec := ctf.EventClass{ID: 1, Name: "f:f", Truncation: true, TruncatedID: 2}
	for i, t := range types {
		ec.Fields = append(ec.Fields, ctf.Field{Name: "f" + strconv.Itoa(i), Type: t})
	}
	var dec ctf.RecordDecoder
	if err := dec.AddClasses(ec); err != nil {
		return nil, 0, 0, false
	}
	full := make([]byte, ctf.EventHeaderSize, ctf.EventHeaderSize+len(rec))
	full[0] = 1
	if trailer {
		full[0] = 2 // the twin id, whose records end with the trailer
	}
	var ev ctf.Event
	n, err := dec.Decode(append(full, rec...), &ev)
	if err != nil {
		return nil, 0, 0, false
	}
	return ev.Fields, ev.Truncated, n - ctf.EventHeaderSize, true
}

type fuzzIn struct {
	b []byte
}

func (in *fuzzIn) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *fuzzIn) n(m int) int { return int(in.byte()) % m }

func (in *fuzzIn) bytes(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = in.byte()
	}
	return out
}

var fuzzKinds = []string{"int64", "bool", "trace_id", "span_id", "string", "", "bytes", "duration"}

var fuzzTypes = []ctf.FieldType{
	{Kind: ctf.Int, Bits: 8}, {Kind: ctf.Int, Bits: 16}, {Kind: ctf.Int, Bits: 32}, {Kind: ctf.Int, Bits: 64},
	{Kind: ctf.Uint, Bits: 8}, {Kind: ctf.Uint, Bits: 16}, {Kind: ctf.Uint, Bits: 32}, {Kind: ctf.Uint, Bits: 64},
	{Kind: ctf.Float, Bits: 32}, {Kind: ctf.Float, Bits: 64},
	{Kind: ctf.String}, {Kind: ctf.String}, {Kind: ctf.Bytes}, {Kind: ctf.Bytes},
	{Kind: ctf.Bytes, Bits: 8 * 16}, {Kind: ctf.Bytes, Bits: 8 * 8}, {Kind: ctf.Bytes, Bits: 8}, {Kind: ctf.Bytes, Bits: 8 * 130},
	{Kind: ctf.Bytes, Bits: 8 * 256},
	// Invalid ones, rarer.
	{Kind: ctf.Float, Bits: 16}, {Kind: ctf.Int, Bits: 7}, {Kind: ctf.String, Bits: 8}, {Kind: ctf.Bytes, Bits: 12},
	{Kind: ctf.Bytes, Bits: 8 * 257}, {Kind: ctf.Bytes, Bits: -8}, {Kind: 0}, {Kind: 9, Bits: 64},
}

var fuzzEnv struct {
	once sync.Once
	e    [2]*Exporter
}

// FuzzAddCTFPlan builds classes, field types and records (well formed,
// then maybe cut, corrupted or replaced with raw bytes) from the input
// and checks that AddCTF encodes exactly what its general path does
// (the same n, error or not, records, counts), and, for records it
// accepts, what the values given one by one encode.
func FuzzAddCTFPlan(f *testing.F) {
	f.Add([]byte{1, 3, 2, 0, 1, 4, 2, 10, 3, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{2, 5, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 200, 100, 50, 9, 14, 2, 2, 2})
	f.Add([]byte("\x01\x10\x08\x02\x0e\x03\x0c\x07\x0a\x05\x0b\x00\x0f\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15"))
	r := rand.New(rand.NewPCG(5, 6))
	for range 30 {
		f.Add(randBytes(r, 100+r.IntN(1500)))
	}
	f.Fuzz(fuzzBody)
}

func fuzzBody(t *testing.T, data []byte) {
	fuzzEnv.once.Do(func() {
		recv := otlptest.NewReceiver(t)
		for i := range fuzzEnv.e {
			e, err := New(recv.URL(), WithHTTPClient(recv.Server.Client()))
			if err != nil {
				t.Fatal(err)
			}
			fuzzEnv.e[i] = e
		}
	})
	in := &fuzzIn{b: data}
	type cls struct {
		c       *Class
		types   []ctf.FieldType
		trailer bool
	}
	var classes []cls
	for range 1 + in.n(3) {
		c := &Class{Name: strings.Repeat("m", in.n(20)), Scope: Scope{Name: "s" + string(rune('a'+in.n(3)))}}
		for j := range in.n(9) {
			name := strings.Repeat("k", in.n(18))
			if in.n(8) == 0 {
				name = "é" + name
			}
			_ = j
			c.Fields = append(c.Fields, Field{Name: name, Kind: fuzzKinds[in.n(len(fuzzKinds))]})
		}
		var types []ctf.FieldType
		for range in.n(12) {
			k := in.n(len(fuzzTypes) + 8)
			if k >= len(fuzzTypes) {
				k %= 19 // the valid ones, more often
			}
			types = append(types, fuzzTypes[k])
		}
		classes = append(classes, cls{c, types, in.n(2) == 0})
	}
	type bset struct{ got, gen, give *LogBuilder }
	var bs [2]bset
	for i := range bs {
		e := fuzzEnv.e[i]
		bs[i] = bset{e.NewLogBuilder(), e.NewLogBuilder(), e.NewLogBuilder()}
	}
	for step := 0; step < 40 && len(in.b) > 0; step++ {
		cl := &classes[in.n(len(classes))]
		bi := 0
		if in.n(4) == 0 {
			bi = 1
		}
		b := &bs[bi]
		if in.n(10) == 0 && len(cl.types) > 0 {
			// Change the types in place: a plan must not hold.
			cl.types[in.n(len(cl.types))] = fuzzTypes[in.n(19)]
		}
		if in.n(10) == 0 {
			// A record begun and left: discarded.
			b.got.Begin(cl.c, 1, 2)
			b.got.Int(5)
			b.got.Str([]byte("abandoned"))
		}
		// A record laid out by the types.
		var rec []byte
		for _, t := range cl.types {
			switch t.Kind {
			case ctf.Int, ctf.Uint, ctf.Float:
				if n, ok := numberSize(&t); ok {
					rec = append(rec, in.bytes(n)...)
				}
			case ctf.String:
				l := int(in.byte())
				if in.n(2) == 0 {
					l %= 20
				}
				s := in.bytes(l)
				for i := range s {
					if s[i] == 0 {
						s[i] = 'x'
					}
				}
				rec = append(append(rec, s...), 0)
			case ctf.Bytes:
				if t.Bits > 0 && t.Bits/8 <= 300 {
					rec = append(rec, in.bytes(t.Bits/8)...)
				} else if t.Bits == 0 {
					l := int(in.byte())
					switch in.n(4) {
					case 0:
						l = 16
					case 1:
						l = 8
					}
					rec = binary.LittleEndian.AppendUint32(rec, uint32(l))
					rec = append(rec, in.bytes(l)...)
				}
			}
		}
		if cl.trailer {
			tr := byte(0)
			if in.n(4) == 0 {
				tr = in.byte()
			}
			rec = append(rec, tr)
		}
		switch in.n(8) {
		case 0:
			if len(rec) > 0 {
				rec = rec[:in.n(len(rec))] // cut
			}
		case 1:
			if len(rec) > 0 {
				rec[in.n(len(rec))] ^= in.byte() // corrupt
			}
		case 2:
			rec = in.bytes(in.n(256)) // raw bytes
		case 3:
			rec = append(rec, in.bytes(in.n(20))...) // more after it
		}
		// The record at the end of a buffer with no slack, and
		// copied so that the builders see equal, separate bytes.
		r1 := append([]byte(nil), rec...)
		r2 := append([]byte(nil), rec...)
		ts, obs := int64(binary.LittleEndian.Uint64(append(in.bytes(4), 1, 2, 3, 4))), int64(step)
		n1, err1 := b.got.AddCTF(cl.c, cl.types, ts, obs, r1, cl.trailer)
		n2, err2 := b.gen.addCTFGeneral(cl.c, cl.types, ts, obs, r2, cl.trailer)
		if n1 != n2 || (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("step %d: AddCTF = %d, %v; general %d, %v (types %v, rec %x)", step, n1, err1, n2, err2, cl.types, rec)
		}
		if string(r1) != string(rec) {
			t.Fatalf("AddCTF wrote into rec")
		}
		if b.got.Len() != b.gen.Len() || b.got.n != b.gen.n || b.got.skipped != b.gen.skipped {
			t.Fatalf("step %d: Len %d (n %d), general %d (n %d)", step, b.got.Len(), b.got.n, b.gen.Len(), b.gen.n)
		}
		if err1 == nil {
			vals, tr, n, ok := decodeForGive(cl.types, rec, cl.trailer)
			if !ok || n != n1 {
				t.Fatalf("step %d: decode %v %d, AddCTF %d", step, ok, n, n1)
			}
			b.give.Begin(cl.c, ts, obs)
			give(b.give, vals)
			b.give.End(tr)
		}
		compareBuildersNoEmpty(t, b.gen, b.got)
		compareBuildersNoEmpty(t, b.give, b.got)
	}
}

// compareBuildersNoEmpty is compareBuilders without emptying (records
// accumulate, as in a packet).
func compareBuildersNoEmpty(t *testing.T, want, got *LogBuilder) {
	t.Helper()
	got.abandon()
	want.abandon()
	if want.n != got.n {
		t.Fatalf("%d records, want %d", got.n, want.n)
	}
	for id := range max(len(want.scopes), len(got.scopes)) {
		var sa, sb builderScope
		if id < len(want.scopes) {
			sa = want.scopes[id]
		}
		if id < len(got.scopes) {
			sb = got.scopes[id]
		}
		if string(sa.recs) != string(sb.recs) || len(sa.ends) != len(sb.ends) {
			t.Fatalf("scope %d: records differ:\n got %x %v\nwant %x %v", id, sb.recs, sb.ends, sa.recs, sa.ends)
		}
		for k := range sa.ends {
			if sa.ends[k] != sb.ends[k] {
				t.Fatalf("scope %d: record %d ends at %d, want %d", id, k, sb.ends[k], sa.ends[k])
			}
		}
	}
}

// FuzzAddCTFRaw feeds arbitrary bytes to AddCTF for classes of every
// field type, looking for panics, and compares with the general path.
func FuzzAddCTFRaw(f *testing.F) {
	f.Add(uint8(3), uint8(0), []byte{1, 2, 3, 0, 4, 0, 0, 0, 9, 9, 9, 9})
	f.Add(uint8(10), uint8(12), []byte("hello\x00\x10\x00\x00\x00aaaaaaaaaaaaaaaa\x00"))
	recv := otlptest.NewReceiver(f)
	f.Fuzz(func(t *testing.T, k1, k2 uint8, rec []byte) {
		fuzzEnv.once.Do(func() {
			for i := range fuzzEnv.e {
				e, err := New(recv.URL(), WithHTTPClient(recv.Server.Client()))
				if err != nil {
					t.Fatal(err)
				}
				fuzzEnv.e[i] = e
			}
		})
		e := fuzzEnv.e[0]
		types := []ctf.FieldType{fuzzTypes[int(k1)%19], fuzzTypes[int(k2)%19], fuzzTypes[int(k1/19)%19]}
		c := &Class{Name: "x:y", Fields: []Field{{Name: "a", Kind: fuzzKinds[k1%8]}, {Name: "bb", Kind: fuzzKinds[k2%8]}, {Name: "ccccccccccccc", Kind: fuzzKinds[(k1^k2)%8]}}}
		got, gen := e.NewLogBuilder(), e.NewLogBuilder()
		for _, trailer := range []bool{false, true} {
			r1 := append([]byte(nil), rec...)
			n1, err1 := got.AddCTF(c, types, 1, 2, r1, trailer)
			n2, err2 := gen.addCTFGeneral(c, types, 1, 2, rec, trailer)
			if n1 != n2 || (err1 == nil) != (err2 == nil) {
				t.Fatalf("AddCTF = %d, %v; general %d, %v", n1, err1, n2, err2)
			}
			compareBuildersNoEmpty(t, gen, got)
		}
	})
}

// A Class overwritten in place (*c = Class{...}), which its doc forbids,
// is another class to AddCTF's plans as to the general path once another
// class came between: the plan of the old one is not used for it.
func TestAddCTFClassOverwritten(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	types := []ctf.FieldType{{Kind: ctf.Int, Bits: 64}}
	rec := []byte{5, 0, 0, 0, 0, 0, 0, 0}
	other := &Class{Name: "other"}
	got, want := e.NewLogBuilder(), e.NewLogBuilder()
	for _, b := range []*LogBuilder{got, want} {
		c := &Class{Name: "a:old", Fields: []Field{{Name: "n", Kind: "int64"}}}
		add := b.AddCTF
		if b == want {
			add = b.addCTFGeneral
		}
		add(c, types, 1, 2, rec, false)
		add(other, nil, 1, 2, nil, false)
		*c = Class{Name: "b:new", Fields: []Field{{Name: "m", Kind: "int64"}}, Scope: Scope{Name: "s2"}}
		add(c, types, 1, 2, rec, false)
	}
	compareBuilders(t, want, got)
}
