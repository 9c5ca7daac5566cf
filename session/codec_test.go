package session

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/probeabi"
	"github.com/tracemark/tracemark/marker"
)

// TestEncodeMatchesCodec fires random events of random schemas (every
// kind, strings and byte slices around the cap, NULs in strings) through
// the session's encoder and compares each record, byte for byte, with
// ctf.AppendRecord of the values as recorded (cut at the cap or at a NUL),
// then decodes it with ctf's record decoder: the specialised encoder and
// the one codec must agree on every event. measure must give the size.
func TestEncodeMatchesCodec(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	kinds := []marker.Kind{
		marker.KindInt8, marker.KindInt16, marker.KindInt32, marker.KindInt64,
		marker.KindUint8, marker.KindUint16, marker.KindUint32, marker.KindUint64,
		marker.KindFloat32, marker.KindFloat64, marker.KindBool, marker.KindString,
		marker.KindBytes, marker.KindDuration, marker.KindTraceID, marker.KindSpanID,
	}
	for schema := range 300 {
		var fields []marker.FieldInfo
		for i := range r.IntN(marker.MaxFields + 1) {
			fields = append(fields, marker.FieldInfo{Name: "f" + strconv.Itoa(i), Kind: kinds[r.IntN(len(kinds))]})
		}
		name := "sesstest:codec_" + strconv.Itoa(schema)
		d, err := marker.DefineDynamic(name, fields)
		if err != nil {
			t.Fatal(err)
		}
		maxString := []int{0, 3, 8, 16, 40, 1024}[r.IntN(6)]
		c := &Class{ID: uint16(1 + r.IntN(1000)), Marker: d.Info(), layout: newLayout(d.Info(), maxString, ctxLayout{})}
		ec := EventClassOf(c)
		if err := ec.Validate(); err != nil {
			t.Fatal(err)
		}
		var dec ctf.RecordDecoder
		if err := dec.AddClasses(ec); err != nil {
			t.Fatal(err)
		}
		var got []byte
		var gotTrunc uint8
		var measured int
		ts := int64(r.Uint64() >> 1)
		p, err := marker.Register(name, func(e *marker.Event) {
			f := &probeabi.Of(e).Fields
			measured = c.layout.measure(f)
			dst := make([]byte, c.layout.max)
			n, trunc := c.layout.encode(dst, c.ID, ts, f, nil)
			got, gotTrunc = dst[:n], trunc
		})
		if err != nil {
			t.Fatal(err)
		}
		for range 30 {
			vals, want, wantTrunc := randomEvent(r, fields, maxString)
			got = nil
			if err := d.Fire(vals...); err != nil {
				t.Fatal(err)
			}
			wantRec, err := ctf.AppendRecord(nil, &ec, uint64(ts), want, wantTrunc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, wantRec) || gotTrunc != wantTrunc || measured != len(wantRec) {
				t.Fatalf("%s %v, cap %d, values %v:\n got %x (truncated %b, measured %d)\nwant %x (truncated %b)",
					name, fields, maxString, want, got, gotTrunc, measured, wantRec, wantTrunc)
			}
			var ev ctf.Event
			n, err := dec.Decode(got, &ev)
			if err != nil || n != len(got) || ev.Cycles != uint64(ts) || ev.Truncated != wantTrunc {
				t.Fatalf("%s: Decode = %d, %v, ts %d, truncated %b", name, n, err, ev.Cycles, ev.Truncated)
			}
			for i, v := range ev.Fields {
				if !v.Equal(want[i]) {
					t.Fatalf("%s field %d (%v): decoded %v, want %v", name, i, fields[i].Kind, v, want[i])
				}
			}
		}
		p.Unregister()
		d.Remove()
	}
}

// randomEvent returns random values for fields, and what the session
// records of them as ctf values: strings cut at maxString and at their
// first NUL, byte slices at maxString, with the _truncated bits.
func randomEvent(r *rand.Rand, fields []marker.FieldInfo, maxString int) ([]marker.Value, []ctf.Value, uint8) {
	var vals []marker.Value
	var want []ctf.Value
	var trunc uint8
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for i, f := range fields {
		u := r.Uint64()
		switch k := f.Kind; {
		case k == marker.KindBool:
			vals = append(vals, marker.BoolValue(u&1 == 1))
			want = append(want, ctf.UintValue(u&1))
		case k == marker.KindDuration:
			vals = append(vals, marker.IntValue(k, int64(u)))
			want = append(want, ctf.IntValue(int64(u)))
		case k.Signed():
			shift := 64 - uint(k.Bits())
			x := int64(u<<shift) >> shift
			vals = append(vals, marker.IntValue(k, x))
			want = append(want, ctf.IntValue(x))
		case k.Unsigned():
			x := u >> (64 - uint(k.Bits()))
			vals = append(vals, marker.UintValue(k, x))
			want = append(want, ctf.UintValue(x))
		case k == marker.KindFloat32:
			x := math.Float32frombits(uint32(u))
			if x != x {
				// A ctf.Value holds a float64: a float32 signalling NaN
				// would come back quieted, whatever the encoder wrote.
				x = float32(math.NaN())
			}
			vals = append(vals, marker.Float32Value(x))
			want = append(want, ctf.FloatValue(float64(x)))
		case k == marker.KindFloat64:
			x := math.Float64frombits(u)
			vals = append(vals, marker.Float64Value(x))
			want = append(want, ctf.FloatValue(x))
		case k == marker.KindString:
			b := randBytes(r.IntN(maxString + 20))
			for j := range b {
				b[j] = 'a' + b[j]%26
			}
			if r.IntN(4) == 0 && len(b) > 0 {
				b[r.IntN(len(b))] = 0
			}
			s := string(b)
			vals = append(vals, marker.StringValue(s))
			cut := s
			if len(cut) > maxString {
				cut, trunc = cut[:maxString], trunc|1<<i
			}
			if z := strings.IndexByte(cut, 0); z >= 0 {
				cut, trunc = cut[:z], trunc|1<<i
			}
			want = append(want, ctf.StringValue(cut))
		case k == marker.KindBytes:
			b := randBytes(r.IntN(maxString + 20))
			vals = append(vals, marker.BytesValue(b))
			cut := b
			if len(cut) > maxString {
				cut, trunc = cut[:maxString], trunc|1<<i
			}
			want = append(want, ctf.BytesValue(cut))
		case k == marker.KindTraceID:
			var id [16]byte
			copy(id[:], randBytes(16))
			vals = append(vals, marker.TraceIDValue(id))
			want = append(want, ctf.BytesValue(id[:]))
		case k == marker.KindSpanID:
			var id [8]byte
			copy(id[:], randBytes(8))
			vals = append(vals, marker.SpanIDValue(id))
			want = append(want, ctf.BytesValue(id[:]))
		}
	}
	return vals, want, trunc
}
