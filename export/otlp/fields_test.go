package otlp

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/otlptest"
)

// give gives the values to b field by field, as their CTF kinds say.
func give(b *LogBuilder, vals []ctf.Value) {
	for _, v := range vals {
		switch v.Kind {
		case ctf.Int:
			b.Int(v.Int)
		case ctf.Uint:
			b.Uint(v.Uint)
		case ctf.Float:
			b.Float(v.Float)
		case ctf.String:
			b.Str(v.Bytes)
		case ctf.Bytes:
			b.Bytes(v.Bytes)
		}
	}
}

// fieldKinds are the marker kinds of the classes of TestBeginSameAsAdd,
// each with the values a field of that kind may hold.
var fieldKinds = []struct {
	kind string
	val  func(r *rand.Rand) ctf.Value
}{
	{"int64", func(r *rand.Rand) ctf.Value { return ctf.IntValue(int64(r.Uint64()) >> r.IntN(64)) }},
	{"int8", func(r *rand.Rand) ctf.Value { return ctf.IntValue(int64(int8(r.Uint32()))) }},
	{"uint64", func(r *rand.Rand) ctf.Value { return ctf.UintValue(r.Uint64() >> r.IntN(64)) }},
	{"uint64", func(r *rand.Rand) ctf.Value { return ctf.UintValue(math.MaxInt64 + 1 + r.Uint64()>>1) }}, // sent as text
	{"float64", func(r *rand.Rand) ctf.Value { return ctf.FloatValue(r.NormFloat64() * 1e6) }},
	{"bool", func(r *rand.Rand) ctf.Value { return ctf.UintValue(uint64(r.IntN(2))) }},
	{"bool", func(r *rand.Rand) ctf.Value { return ctf.IntValue(int64(r.IntN(2))) }},
	{"duration", func(r *rand.Rand) ctf.Value { return ctf.IntValue(r.Int64N(1e12)) }},
	{"string", func(r *rand.Rand) ctf.Value { return ctf.StringValue(strings.Repeat("é", r.IntN(3)*r.IntN(90))) }},
	{"bytes", func(r *rand.Rand) ctf.Value { return ctf.BytesValue(randBytes(r, r.IntN(3)*r.IntN(9000))) }},
	{"", func(r *rand.Rand) ctf.Value { return ctf.IntValue(-r.Int64()) }},
	{"trace_id", func(r *rand.Rand) ctf.Value { return ctf.BytesValue(randBytes(r, 16)) }},
	{"trace_id", func(r *rand.Rand) ctf.Value { return ctf.BytesValue(randBytes(r, r.IntN(20))) }}, // maybe not an id
	{"trace_id", func(r *rand.Rand) ctf.Value { return ctf.StringValue(string(randBytes(r, 16))) }},
	{"span_id", func(r *rand.Rand) ctf.Value { return ctf.BytesValue(randBytes(r, 8)) }},
	{"span_id", func(r *rand.Rand) ctf.Value { return ctf.UintValue(r.Uint64()) }}, // never an id
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// A record given field by field (Begin, the values, End) is encoded
// byte for byte as Add encodes the same values: every field kind, ids
// present, absent or of the wrong length, unsigned values sent as text,
// truncation masks, records too long for a one-byte size (and for two),
// values missing at the end, and records abandoned half way.
func TestBeginSameAsAdd(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	r := rand.New(rand.NewPCG(1, 2))
	added, given := e.NewLogBuilder(), e.NewLogBuilder()
	var c *Class
	var kinds []int
	for i := range 3000 {
		if c == nil || r.IntN(2) == 0 {
			// A new class, else another event of the same (a run).
			c = &Class{Name: strings.Repeat("m", 1+r.IntN(40)), Scope: Scope{Name: "s" + string(rune('a'+r.IntN(3)))}}
			kinds = kinds[:0]
			for j := range r.IntN(9) {
				k := r.IntN(len(fieldKinds))
				c.Fields = append(c.Fields, Field{Name: strings.Repeat("k", 1+j+r.IntN(3)), Kind: fieldKinds[k].kind})
				kinds = append(kinds, k)
			}
		}
		nf := len(kinds)
		var vals []ctf.Value
		for _, k := range kinds {
			vals = append(vals, fieldKinds[k].val(r))
		}
		if nf > 0 && r.IntN(10) == 0 {
			vals = vals[:r.IntN(nf)] // values missing
		}
		trunc := uint8(0)
		if r.IntN(4) == 0 {
			trunc = uint8(r.Uint32())
		}
		ts, obs := r.Int64(), r.Int64()
		if r.IntN(8) == 0 {
			// Abandoned: the next record takes its place.
			given.Begin(c, ts, obs)
			give(given, vals[:len(vals)/2])
		}
		added.Add(c, ts, obs, vals, trunc)
		if !given.Begin(c, ts, obs) {
			t.Fatal("Begin found the queue full")
		}
		give(given, vals)
		given.End(trunc)
		if i%100 == 99 {
			compareBuilders(t, added, given)
		}
	}
	compareBuilders(t, added, given)
}

// compareBuilders fails unless a and b hold the same records, then
// empties both.
func compareBuilders(t *testing.T, a, b *LogBuilder) {
	t.Helper()
	b.abandon()
	if a.n != b.n || len(a.scopes) != len(b.scopes) {
		t.Fatalf("%d records in %d scopes, want %d in %d", b.n, len(b.scopes), a.n, len(a.scopes))
	}
	for id := range a.scopes {
		sa, sb := &a.scopes[id], &b.scopes[id]
		if !bytes.Equal(sa.recs, sb.recs) || !slices.Equal(sa.ends, sb.ends) {
			for k := range min(len(sa.ends), len(sb.ends)) {
				if sa.ends[k] != sb.ends[k] {
					t.Fatalf("scope %d: record %d ends at %d, want %d", id, k, sb.ends[k], sa.ends[k])
				}
			}
			t.Fatalf("scope %d: records differ:\n got %x\nwant %x", id, sb.recs, sa.recs)
		}
		sa.recs, sa.ends, sb.recs, sb.ends = sa.recs[:0], sa.ends[:0], sb.recs[:0], sb.ends[:0]
	}
	a.n, b.n = 0, 0
}

// With the queue full (here: the exporter closed), Begin encodes nothing
// and the event counts as dropped, like Add; the field calls and End do
// nothing.
func TestBeginQueueFull(t *testing.T) {
	e := newTestExporter(t, otlptest.NewReceiver(t))
	b := e.NewLogBuilder()
	c := &Class{Name: "x", Fields: []Field{{"i", "int64"}}}
	if !b.Begin(c, 1, 1) {
		t.Fatal("Begin found an open exporter's queue full")
	}
	b.Int(1)
	b.End(0)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b.Begin(c, 2, 2) {
		t.Fatal("Begin encoded an event with the queue full")
	}
	b.Int(5)
	b.End(0)
	if b.Len() != 2 || b.n != 1 {
		t.Fatalf("Len %d, %d encoded: want one encoded and one skipped", b.Len(), b.n)
	}
	if d := e.Commit(b); d != 2 {
		t.Fatalf("Commit dropped %d, want 2 (both after Close)", d)
	}
	if st := e.Stats(); st.Events != 2 || st.Dropped != 2 {
		t.Fatalf("stats %+v, want 2 events, 2 dropped", st)
	}
}
