package wasmbin

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"
)

// memoryAfterStart instantiates a module and returns its exported
// memory's bytes, or the instantiation's error.
func memoryAfterStart(t testing.TB, wasm []byte) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	mod, err := rt.Instantiate(ctx, wasm)
	if err != nil {
		return nil, err
	}
	mem := mod.Memory()
	b, _ := mem.Read(0, mem.Size())
	return bytes.Clone(b), nil
}

// dataSegments counts a module's data segments.
func dataSegments(t testing.TB, wasm []byte) int {
	t.Helper()
	secs, err := Sections(wasm)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secs {
		if s.ID == SectionData {
			n, _, _ := ReadU32(s.Payload)
			return int(n)
		}
	}
	return 0
}

type testSegment struct {
	off   uint32
	bytes []byte
}

// segmentsModule is a module with a memory of pages pages and the
// segments, in their order.
func segmentsModule(pages uint32, segs []testSegment) []byte {
	b := NewBuilder()
	b.Memory(pages, 0)
	for _, s := range segs {
		b.Data(s.off, s.bytes)
	}
	return b.Bytes()
}

// checkMerge checks that merging a module's data segments leaves the
// memory it starts with as it was, and that instantiating it fails when
// it did.
func checkMerge(t testing.TB, wasm []byte) []byte {
	t.Helper()
	merged := MergeData(wasm)
	want, wantErr := memoryAfterStart(t, wasm)
	got, gotErr := memoryAfterStart(t, merged)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("instantiating: %v before merging, %v after", wantErr, gotErr)
	}
	if !bytes.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("memory differs at %d: %d, was %d (%d bytes, was %d)", i, got[i], want[i], len(got), len(want))
			}
		}
		t.Fatalf("memory of %d bytes, was %d", len(got), len(want))
	}
	return merged
}

// randomLayout makes n segments in ascending order with gaps of every
// kind (none, under DataGap, over it), some of them empty, then shuffles
// them unless sorted.
func randomLayout(r *rand.Rand, n int, sorted bool) []testSegment {
	segs := make([]testSegment, n)
	at := uint32(r.IntN(100))
	for i := range segs {
		switch r.IntN(4) {
		case 0:
		case 1:
			at += uint32(1 + r.IntN(8))
		case 2:
			at += uint32(8 + r.IntN(DataGap-7))
		default:
			at += uint32(DataGap + 1 + r.IntN(200))
		}
		b := make([]byte, r.IntN(40))
		for j := range b {
			b[j] = byte(r.IntN(4)) // zeros too
		}
		segs[i] = testSegment{at, b}
		at += uint32(len(b))
	}
	if !sorted {
		r.Shuffle(n, func(i, j int) { segs[i], segs[j] = segs[j], segs[i] })
	}
	return segs
}

// MergeData joins the segments of a Go-like layout (ascending, in any
// order, gaps long and short) into fewer, and the module starts with the
// same memory.
func TestMergeData(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		segs := randomLayout(r, 2+r.IntN(60), i%2 == 0)
		wasm := segmentsModule(1, segs)
		merged := checkMerge(t, wasm)
		short := 0 // gaps of at most DataGap between neighbours by offset
		byOff := append([]testSegment{}, segs...)
		slices.SortFunc(byOff, func(a, b testSegment) int {
			return cmp.Or(cmp.Compare(a.off, b.off), cmp.Compare(len(a.bytes), len(b.bytes)))
		})
		for j := 1; j < len(byOff); j++ {
			if byOff[j].off-(byOff[j-1].off+uint32(len(byOff[j-1].bytes))) <= DataGap {
				short++
			}
		}
		if got, want := dataSegments(t, merged), len(segs)-short; got != want {
			t.Fatalf("layout %d: %d segments after merging %d with %d short gaps", i, got, len(segs), short)
		}
	}
}

// Segments beyond the memory fail instantiation after merging too, a
// segment at its very end does not, and an empty one just past it does.
func TestMergeDataBounds(t *testing.T) {
	for _, segs := range [][]testSegment{
		{{0, []byte{1}}, {65530, []byte{1, 2, 3, 4, 5, 6}}},       // ends at the end
		{{0, []byte{1}}, {65530, []byte{1, 2, 3, 4, 5, 6, 7}}},    // one byte over
		{{65535, []byte{1}}, {65500, []byte{2}}},                  // unsorted, in bounds
		{{65536, nil}, {65500, []byte{2}}},                        // empty, at the end
		{{65537, nil}, {65500, []byte{2}}},                        // empty, past the end
		{{10, []byte{1}}, {70000, []byte{2}}, {65535, []byte{3}}}, // far over, not merged
	} {
		checkMerge(t, segmentsModule(1, segs))
	}
}

// MergeData leaves a module as it is where merging could change what it
// does: overlapping segments (the order matters), a passive segment or a
// data count section (code may name segments), an offset that is not a
// constant, an imported memory (a gap need not be zero).
func TestMergeDataUnchanged(t *testing.T) {
	same := func(name string, wasm []byte) {
		t.Helper()
		if got := MergeData(wasm); !bytes.Equal(got, wasm) {
			t.Errorf("%s: changed", name)
		}
	}
	overlap := segmentsModule(1, []testSegment{{0, []byte{1, 2, 3}}, {2, []byte{9}}, {20, []byte{4}}})
	same("overlapping", overlap)
	checkMerge(t, overlap)
	same("one segment", segmentsModule(1, []testSegment{{5, []byte{1}}}))

	base := segmentsModule(1, []testSegment{{0, []byte{1}}, {2, []byte{2}}})
	withData := func(payload []byte, extra ...byte) []byte {
		secs, err := Sections(base)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secs {
			if s.ID == SectionData {
				out := append([]byte{}, base[:s.Start]...)
				out = append(out, extra...)
				out = AppendSection(out, SectionData, payload)
				return append(out, base[s.End:]...)
			}
		}
		t.Fatal("no data section")
		return nil
	}
	seg := func(head ...byte) []byte { return append(head, 1, 7) }
	active := seg(0, OpI32Const, 0, OpEnd)
	two := func(b []byte) []byte { return append(append([]byte{2}, active...), b...) }
	same("passive", withData(two(seg(1))))
	same("memory index", withData(two(seg(2, 0, OpI32Const, 3, OpEnd))))
	same("global offset", withData(two(seg(0, 0x23, 0, OpEnd))))
	same("data count", withData(two(seg(0, OpI32Const, 3, OpEnd)), AppendSection(nil, SectionDataCount, []byte{2})...))
	if got := MergeData(withData(two(seg(0, OpI32Const, 3, OpEnd)))); dataSegments(t, got) != 1 {
		t.Fatalf("the control was not merged: %d segments", dataSegments(t, got))
	}

	// An imported memory.
	imp := []byte(Header)
	imp = AppendSection(imp, SectionImport, append(AppendName(AppendName([]byte{1}, "env"), "mem"), KindMemory, 0, 1))
	imp = AppendSection(imp, SectionData, two(seg(0, OpI32Const, 3, OpEnd)))
	same("imported memory", imp)
}

// FuzzMergeData: whatever the segments, merging them leaves the memory
// the module starts with, and whether it starts, as it was.
func FuzzMergeData(f *testing.F) {
	f.Add([]byte{0, 0, 3, 1, 2, 3, 10, 0, 1, 9})
	f.Add([]byte{200, 255, 8, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 5})
	f.Fuzz(func(t *testing.T, in []byte) {
		// Each segment: a u16 offset (in a memory of one page, or past it),
		// a length byte (up to 15 bytes) and its bytes.
		var segs []testSegment
		for len(in) >= 3 && len(segs) < 100 {
			off := uint32(binary.LittleEndian.Uint16(in)) + uint32(in[2]>>4)*4096
			n := int(in[2] & 15)
			in = in[3:]
			n = min(n, len(in))
			segs = append(segs, testSegment{off, in[:n]})
			in = in[n:]
		}
		if len(segs) == 0 {
			return
		}
		checkMerge(t, segmentsModule(1, segs))
	})
}

// A run of segments spanning 2^32 bytes or more (memory's whole 32-bit
// range) is not merged into one: a segment's length is a u32, and 2^32
// would wrap to 0. The segments are descriptors (a module holding them
// would be hundreds of megabytes).
func TestDataRunsSpan(t *testing.T) {
	desc := func(off, n uint64) mergeSegment { return mergeSegment{off: uint32(off), end: off + n} }
	for _, c := range []struct {
		name string
		segs []mergeSegment
		want [][2]int
	}{
		{"spans 2^32", []mergeSegment{desc(0, 1<<31), desc(1<<31+DataGap, 1<<31-DataGap)}, [][2]int{{0, 1}, {1, 2}}},
		{"spans 2^32-1", []mergeSegment{desc(1, 1<<31), desc(1<<31+1+DataGap, 1<<31-DataGap-1)}, [][2]int{{0, 2}}},
		{"third segment reaches 2^32", []mergeSegment{desc(0, 10), desc(10, 1<<32-20), desc(1<<32-10, 10)}, [][2]int{{0, 2}, {2, 3}}},
		{"gap over DataGap", []mergeSegment{desc(0, 10), desc(10+DataGap+1, 10)}, [][2]int{{0, 1}, {1, 2}}},
	} {
		if got := dataRuns(c.segs); !slices.Equal(got, c.want) {
			t.Errorf("%s: runs %v, want %v", c.name, got, c.want)
		}
	}
}
