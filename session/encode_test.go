package session

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/probeabi"
	"github.com/tracemark/tracemark/marker"
)

var encodeTest = marker.Define3("sesstest:encode", marker.Int32("a"), marker.String("s"), marker.Bytes("b"))

// TestEncodeStrings compares the encoder, whose word-at-a-time path covers
// strings of 8 to 16 bytes, with a plain reference encoding, for every
// string length up to 40 with and without a NUL at every position, and caps
// below, inside and above that range. measure must agree with the size.
func TestEncodeStrings(t *testing.T) {
	type input struct {
		s string
		b []byte
	}
	var inputs []input
	for n := range 41 {
		base := strings.Repeat("abcdefghij", 5)[:n]
		inputs = append(inputs, input{base, []byte(base)})
		for z := range n {
			inputs = append(inputs, input{base[:z] + "\x00" + base[z+1:], nil})
		}
	}
	for _, maxString := range []int{0, 5, 8, 12, 16, 17, 1024} {
		l := newLayout(encodeTest.Info(), maxString, ctxLayout{})
		for _, in := range inputs {
			var got []byte
			var gotTrunc uint8
			var measured int
			p, err := marker.Register("sesstest:encode", func(e *marker.Event) {
				f := &probeabi.Of(e).Fields
				measured = l.measure(f)
				dst := make([]byte, l.max)
				n, trunc := l.encode(dst, 7, 99, f, nil)
				got, gotTrunc = dst[:n], trunc
			})
			if err != nil {
				t.Fatal(err)
			}
			encodeTest.Fire(-3, in.s, in.b)
			p.Unregister()
			want, wantTrunc := referenceRecord(in.s, in.b, maxString)
			if !bytes.Equal(got, want) || gotTrunc != wantTrunc || measured != len(want) {
				t.Fatalf("cap %d, string %q, bytes %q:\n got %q (truncated %b, measured %d)\nwant %q (truncated %b)",
					maxString, in.s, in.b, got, gotTrunc, measured, want, wantTrunc)
			}
			// The reader finds where the record ends, with or without
			// more records after it.
			ec := EventClassOf(&Class{ID: 7, Marker: encodeTest.Info(), layout: l})
			if n, err := ctf.RecordSize(want, &ec); n != len(want) {
				t.Fatalf("RecordSize of %q = %d, %v; want %d", want, n, err, len(want))
			}
			if n, err := ctf.RecordSize(append(bytes.Clone(want), want...), &ec); n != len(want) {
				t.Fatalf("RecordSize of two records %q = %d, %v; want %d", want, n, err, len(want))
			}
		}
	}
}

// referenceRecord encodes the sesstest:encode record the plain way.
func referenceRecord(s string, b []byte, maxString int) ([]byte, uint8) {
	var trunc uint8
	if len(s) > maxString {
		s, trunc = s[:maxString], trunc|1<<1
	}
	if z := strings.IndexByte(s, 0); z >= 0 {
		s, trunc = s[:z], trunc|1<<1
	}
	if len(b) > maxString {
		b, trunc = b[:maxString], trunc|1<<2
	}
	id := uint16(7)
	if trunc != 0 {
		id |= 0x8000 // the twin id of truncated records
	}
	out := binary.LittleEndian.AppendUint16(nil, id)
	out = binary.LittleEndian.AppendUint64(out, 99)
	out = binary.LittleEndian.AppendUint32(out, uint32(0xfffffffd)) // int32 -3
	out = append(append(out, s...), 0)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(b)))
	out = append(out, b...)
	if trunc == 0 {
		return out, 0 // no trailer
	}
	return append(out, trunc), trunc
}

var encodeWords = marker.Define6("sesstest:encodewords", marker.Int64("a"), marker.Float64("b"),
	marker.String("s"), marker.Int64("c"), marker.Uint8("d"), marker.Duration("e"))

// TestEncodeLeadingWords covers classes whose leading 8-byte fields are
// copied to fixed offsets before the general loop takes over.
func TestEncodeLeadingWords(t *testing.T) {
	l := newLayout(encodeWords.Info(), 64, ctxLayout{})
	var got []byte
	p, err := marker.Register("sesstest:encodewords", func(e *marker.Event) {
		f := &probeabi.Of(e).Fields
		dst := make([]byte, l.max)
		n, _ := l.encode(dst, 3, 5, f, nil)
		got = dst[:n]
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	for _, s := range []string{"", "short", "exactly16bytes!!", "a somewhat longer string than sixteen"} {
		encodeWords.Fire(-1, 2.5, s, 1<<40, 200, 7)
		want := binary.LittleEndian.AppendUint16(nil, 3)
		want = binary.LittleEndian.AppendUint64(want, 5)
		want = binary.LittleEndian.AppendUint64(want, ^uint64(0))
		want = binary.LittleEndian.AppendUint64(want, math.Float64bits(2.5))
		want = append(append(want, s...), 0)
		want = binary.LittleEndian.AppendUint64(want, 1<<40)
		want = append(want, 200)
		want = binary.LittleEndian.AppendUint64(want, 7) // and no trailer: nothing was cut
		ec := EventClassOf(&Class{ID: 3, Marker: encodeWords.Info(), layout: l})
		if n, err := ctf.RecordSize(got, &ec); !bytes.Equal(got, want) || n != len(got) || err != nil {
			t.Fatalf("string %q:\n got %q\nwant %q", s, got, want)
		}
	}
}

// TestIndexNUL compares indexNUL with strings.IndexByte on both sides of
// its 64-byte word-at-a-time range.
func TestIndexNUL(t *testing.T) {
	for n := range 150 {
		base := strings.Repeat("x", n)
		if got := indexNUL(base); got != -1 {
			t.Fatalf("indexNUL of %d bytes without NUL = %d", n, got)
		}
		for z := range n {
			s := base[:z] + "\x00" + base[z+1:]
			if got := indexNUL(s); got != z {
				t.Fatalf("indexNUL with NUL at %d of %d = %d", z, n, got)
			}
		}
	}
}
