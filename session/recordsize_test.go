package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/ring"
	"github.com/tracemark/tracemark/marker"
)

// fieldKinds are the kinds of marker fields, in an order the fuzz test's
// schema bytes index.
var fieldKinds = []marker.Kind{
	marker.KindString, marker.KindBytes,
	marker.KindInt8, marker.KindInt16, marker.KindInt32, marker.KindInt64,
	marker.KindUint8, marker.KindUint16, marker.KindUint32, marker.KindUint64,
	marker.KindFloat32, marker.KindFloat64, marker.KindBool,
	marker.KindDuration, marker.KindTraceID, marker.KindSpanID,
}

// sizeClass defines a marker of the given kinds and returns its class, as
// a session with a context block of ctxSize bytes makes it, and a function
// that removes the marker.
func sizeClass(t testing.TB, kinds []marker.Kind, ctxSize, maxString int) (*Class, func()) {
	t.Helper()
	var fields []marker.FieldInfo
	name := "sesstest:size"
	for i, k := range kinds {
		fields = append(fields, marker.FieldInfo{Name: "f" + strconv.Itoa(i), Kind: k})
		name += "_" + strconv.Itoa(int(k))
	}
	d, err := marker.DefineDynamic(name, fields)
	if err != nil {
		t.Fatal(err)
	}
	c := &Class{ID: 1 + uint16(len(kinds)), Marker: d.Info(), layout: newLayout(d.Info(), maxString, ctxLayout{size: uint8(ctxSize)})}
	c.ec = EventClassOf(c)
	return c, d.Remove
}

// checkRecordSize fails t unless c's layout measures the record at the
// start of b as ctf.RecordSizeFrom does, from the offset finish gives it:
// the same size, or false where RecordSizeFrom finds that the record does
// not fit.
func checkRecordSize(t testing.TB, c *Class, b []byte) {
	t.Helper()
	want, err := ctf.RecordSizeFrom(b, &c.ec, int(c.layout.ops[0].idx), c.layout.restOff)
	if err != nil && !errors.Is(err, ctf.ErrCorrupt) {
		t.Fatalf("%s: RecordSizeFrom(%x) = %v, not ErrCorrupt", c.Marker.Name(), b, err)
	}
	twin := len(b) >= 2 && binary.LittleEndian.Uint16(b) == c.ec.TruncatedID
	got, ok := c.layout.recordSize(b, twin)
	if ok != (err == nil) || ok && got != want {
		t.Fatalf("%s (context %d bytes): recordSize(%x, twin %v) = %d, %v; RecordSizeFrom = %d, %v",
			c.Marker.Name(), c.layout.ctx.size, b, twin, got, ok, want, err)
	}
}

// TestRecordSizeMatchesCodec measures records of random schemas that have
// a string or bytes field, after a context block or not, with
// layout.recordSize and ctf.RecordSizeFrom: valid records (plain and
// truncated twins, followed by more of the packet), every prefix of them,
// and copies with bytes changed (NULs, large lengths, the twin bit
// flipped). The two must agree on every one.
func TestRecordSizeMatchesCodec(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for range 300 {
		kinds := []marker.Kind{fieldKinds[r.IntN(2)]} // a string or bytes field
		for range r.IntN(marker.MaxFields) {
			kinds = append(kinds, fieldKinds[r.IntN(len(fieldKinds))])
		}
		r.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		maxString := []int{0, 3, 8, 40}[r.IntN(4)]
		ctxSize := []int{0, 4, 12, 37}[r.IntN(4)]
		c, remove := sizeClass(t, kinds, ctxSize, maxString)
		var fields []marker.FieldInfo
		for i := range c.Marker.NumFields() {
			fields = append(fields, c.Marker.Field(i))
		}
		for range 20 {
			_, vals, trunc := randomEvent(r, fields, maxString)
			rec, err := ctf.AppendRecord(nil, &c.ec, r.Uint64(), vals, trunc)
			if err != nil {
				t.Fatal(err)
			}
			ctx := make([]byte, ctxSize)
			for i := range ctx {
				ctx[i] = byte(r.Uint32())
			}
			rec = slices.Insert(rec, headerSize, ctx...)
			if n, ok := c.layout.recordSize(append(rec, 0xee), trunc != 0); !ok || n != len(rec) {
				t.Fatalf("%s: recordSize of a %d-byte record = %d, %v", c.Marker.Name(), len(rec), n, ok)
			}
			packet := append(bytes.Clone(rec), 'x', 0, 0xff, 0xff, 0xff, 0x7f, 1)
			for k := range len(packet) + 1 {
				checkRecordSize(t, c, packet[:k])
			}
			for range 20 {
				bad := bytes.Clone(packet)
				for range 1 + r.IntN(3) {
					switch i := r.IntN(len(bad)); r.IntN(4) {
					case 0:
						bad[i] = 0
					case 1:
						bad[i] = 0xff
					case 2:
						bad[1] ^= twinBit >> 8
					default:
						bad[i] = byte(r.Uint32())
					}
				}
				checkRecordSize(t, c, bad[:r.IntN(len(bad)+1)])
				checkRecordSize(t, c, bad)
			}
		}
		remove()
	}
}

// FuzzRecordSize measures arbitrary bytes as a record of a schema the
// fuzzer picks (at least one string or bytes field; schema bytes index
// fieldKinds, ctx is the context block's size) with layout.recordSize
// and ctf.RecordSizeFrom, which must agree.
func FuzzRecordSize(f *testing.F) {
	hello := []byte("\x03\x00tickstck\x07\x00\x00\x00\xd2\x04\x00\x00\x00\x00\x00\x00hello\x00")
	f.Add([]byte{4, 5, 0}, uint8(0), hello)
	f.Add([]byte{4, 5, 0}, uint8(0), append([]byte{0x03, 0x80}, append(hello[2:], 1)...))
	f.Add([]byte{0, 1, 13}, uint8(4), []byte("\x03\x00tickstckctxtab\x00\x02\x00\x00\x00xy12345678"))
	f.Add([]byte{1, 0, 14, 12}, uint8(0), []byte("\x05\x80tickstck\xff\xff\xff\xffab"))
	f.Fuzz(func(t *testing.T, schema []byte, ctx uint8, rec []byte) {
		if len(schema) == 0 || len(schema) > marker.MaxFields {
			return
		}
		var kinds []marker.Kind
		variable := false
		for _, k := range schema {
			kinds = append(kinds, fieldKinds[int(k)%len(fieldKinds)])
			variable = variable || int(k)%len(fieldKinds) < 2
		}
		if !variable {
			return
		}
		c, remove := sizeClass(t, kinds, int(ctx), 16)
		defer remove()
		checkRecordSize(t, c, rec)
	})
}

// TestFinishMeasuresRuns drains a packet of records of a fixed and a
// variable class in runs, plain and truncated: finish looks a class up
// once per run of records, and must still count every record for its
// class and refuse an unknown id after a run, and a variable record that
// does not fit, with the error ctf's walk words.
func TestFinishMeasuresRuns(t *testing.T) {
	fixed := marker.Define2("sesstest:runs_fixed", marker.Int64("a"), marker.Int32("b"))
	variable := marker.Define3("sesstest:runs_var", marker.Int32("i"), marker.Int64("v"), marker.String("s"))
	s, err := New("runs", WithMaxStringLen(8))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if _, err := s.Enable("sesstest:runs_*", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var f, v *Class
	for _, c := range s.Classes() {
		switch c.Marker {
		case fixed.Info():
			f = c
		case variable.Info():
			v = c
		}
	}
	if f == nil || v == nil {
		t.Fatalf("classes %v", s.Classes())
	}
	record := func(c *Class, vals []ctf.Value, trunc uint8) []byte {
		b, err := ctf.AppendRecord(nil, &c.ec, 1, vals, trunc)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Insert(b, headerSize, make([]byte, s.cx.size)...)
	}
	fr := record(f, []ctf.Value{ctf.IntValue(1), ctf.IntValue(2)}, 0)
	vr := record(v, []ctf.Value{ctf.IntValue(1), ctf.IntValue(2), ctf.StringValue("hello")}, 0)
	tr := record(v, []ctf.Value{ctf.IntValue(1), ctf.IntValue(2), ctf.StringValue("12345678")}, 1<<2)
	var data []byte
	for _, rec := range [][]byte{fr, vr, vr, tr, tr, vr, fr, fr, tr, vr} {
		data = append(data, rec...)
	}
	if _, err := s.finish(ringPacket(data, 10), true); err != nil {
		t.Fatal(err)
	}
	if got, want := [2]uint64{f.delivered.Load(), v.delivered.Load()}, [2]uint64{3, 7}; got != want {
		t.Errorf("delivered (fixed, variable) = %v, want %v", got, want)
	}

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"unknown id after a run", append(append(bytes.Clone(vr), vr...), 0x7f, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
			fmt.Sprintf("record of unknown class %d at offset %d", 0x7f7f, 2*len(vr))},
		{"twin id without trailer", append(append(bytes.Clone(vr), vr[:1]...), append([]byte{vr[1] | twinBit>>8}, vr[2:]...)...),
			fmt.Sprintf("malformed %s record at offset %d: ", v.Marker.Name(), len(vr))},
		{"unterminated string", append(bytes.Clone(vr), vr[:len(vr)-1]...),
			fmt.Sprintf("malformed %s record at offset %d: ", v.Marker.Name(), len(vr))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.finish(ringPacket(tc.data, 3), false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("finish = %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(tc.want, "malformed") {
				_, cerr := ctf.RecordSizeFrom(tc.data[len(vr):], &v.ec, int(v.layout.ops[0].idx), v.layout.restOff)
				if !errors.Is(err, ctf.ErrCorrupt) || cerr == nil || !strings.HasSuffix(err.Error(), ": "+cerr.Error()) {
					t.Fatalf("finish = %v, want ctf's %v", err, cerr)
				}
			}
		})
	}
}

// ringPacket is a ring packet of records, as a drain hands it to finish.
func ringPacket(data []byte, records int) ring.Packet {
	return ring.Packet{Seq: 1 << 40, Data: data, Records: records}
}
