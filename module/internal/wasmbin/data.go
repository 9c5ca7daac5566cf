package wasmbin

import (
	"cmp"
	"slices"
)

// SectionDataCount is the id of the data count section (bulk memory).
const SectionDataCount byte = 12

// DataGap is the longest run of zeros that MergeData writes out to join
// two data segments. Go's linker starts a new segment at every run of 8
// zero bytes or more, which gives a Go module tens of thousands of
// segments of a few bytes; a runtime pays for each (decoding, allocating,
// evaluating its offset) more than for copying 64 bytes.
const DataGap = 64

// mergeSegment is an active segment of memory 0 at a constant offset.
type mergeSegment struct {
	off   uint32
	bytes []byte
	end   uint64 // off+len(bytes), the offset past it
}

// MergeData returns the module b with its data segments joined where
// they are at most DataGap bytes apart (the gap written as zeros), in
// order of their offsets, so that the module has few large segments
// instead of many small ones. The memory the module starts with is the
// same: it returns b as it is unless the rewrite cannot change it, that
// is unless every segment is active in memory 0 at a constant offset
// (i32.const), no two segments overlap (then the order in which they are
// written does not matter, and no segment writes in a gap), the memory
// is the module's own (not imported: its bytes in a gap are zero when
// the module starts) and the module has no data count section (so its
// code cannot name a segment by index, with memory.init or data.drop).
// Instantiation fails exactly when it did: a segment beyond the memory's
// initial size ends a merged segment beyond it, and the merged segments
// end where the segments did. b is assumed well-formed (as Instrument
// leaves it); bytes that do not parse are returned as they are.
func MergeData(b []byte) []byte {
	secs, err := Sections(b)
	if err != nil {
		return b
	}
	var data *Section
	hasMemory := false
	for i := range secs {
		s := &secs[i]
		switch s.ID {
		case SectionImport:
			ims, err := Imports(s.Payload)
			if err != nil {
				return b
			}
			for _, im := range ims {
				if im.Kind == KindMemory {
					return b
				}
			}
		case SectionMemory:
			n, _, err := ReadU32(s.Payload)
			hasMemory = err == nil && n > 0
		case SectionDataCount:
			return b
		case SectionData:
			data = s
		}
	}
	if data == nil || !hasMemory {
		return b
	}
	segs, ok := activeSegments(data.Payload)
	if !ok || len(segs) < 2 {
		return b
	}
	// By offset, an empty segment before one at its offset.
	slices.SortStableFunc(segs, func(x, y mergeSegment) int {
		return cmp.Or(cmp.Compare(x.off, y.off), cmp.Compare(len(x.bytes), len(y.bytes)))
	})
	for i := 1; i < len(segs); i++ {
		if uint64(segs[i].off) < segEnd(segs[i-1]) {
			return b // overlapping: the order matters
		}
	}
	runs := dataRuns(segs)
	p := AppendU32(make([]byte, 0, len(data.Payload)+len(data.Payload)/4), uint32(len(runs)))
	for _, r := range runs {
		first, last := segs[r[0]], segs[r[1]-1]
		p = append(p, 0, OpI32Const)
		p = AppendS64(p, int64(int32(first.off)))
		p = append(p, OpEnd)
		p = AppendU32(p, uint32(segEnd(last)-uint64(first.off)))
		at := uint64(first.off)
		for _, s := range segs[r[0]:r[1]] {
			for ; at < uint64(s.off); at++ {
				p = append(p, 0)
			}
			p = append(p, s.bytes...)
			at = segEnd(s)
		}
	}
	out := make([]byte, 0, len(b)-len(data.Payload)+len(p)+8)
	out = append(out, b[:data.Start]...)
	out = AppendSection(out, SectionData, p)
	return append(out, b[data.End:]...)
}

// dataRuns returns the runs of segs (sorted by offset, not overlapping)
// that MergeData writes as one segment each, as [first, last+1) in segs:
// segments at most DataGap apart, spanning less than 2^32 bytes (the
// length of a segment is a u32; a run of exactly 2^32 would wrap to 0).
func dataRuns(segs []mergeSegment) [][2]int {
	var runs [][2]int
	for i := 0; i < len(segs); {
		j := i + 1
		for j < len(segs) && uint64(segs[j].off)-segEnd(segs[j-1]) <= DataGap && segEnd(segs[j])-uint64(segs[i].off) < 1<<32 {
			j++
		}
		runs = append(runs, [2]int{i, j})
		i = j
	}
	return runs
}

func segEnd(s mergeSegment) uint64 { return s.end }

// activeSegments parses a data section whose every segment is active in
// memory 0 at an i32.const offset (flags 0) and ends within 32 bits.
func activeSegments(p []byte) ([]mergeSegment, bool) {
	r := &reader{b: p}
	n, err := r.count(5)
	if err != nil {
		return nil, false
	}
	segs := make([]mergeSegment, 0, n)
	for range n {
		if flags, err := r.u32(); err != nil || flags != 0 {
			return nil, false
		}
		if op, err := r.byte(); err != nil || op != OpI32Const {
			return nil, false
		}
		off, k, ok := readS32At(r.b[r.off:])
		if !ok {
			return nil, false
		}
		r.off += k
		if op, err := r.byte(); err != nil || op != OpEnd {
			return nil, false
		}
		l, err := r.u32()
		if err != nil || uint64(l) > uint64(len(r.b)-r.off) {
			return nil, false
		}
		s := mergeSegment{off: uint32(off), bytes: r.b[r.off : r.off+int(l)], end: uint64(uint32(off)) + uint64(l)}
		r.off += int(l)
		if segEnd(s) > 1<<32 {
			return nil, false
		}
		segs = append(segs, s)
	}
	if r.end() != nil {
		return nil, false
	}
	return segs, true
}

// readS32At reads a signed LEB128 i32 and returns it with its length.
func readS32At(b []byte) (int32, int, bool) {
	var v int64
	var shift uint
	for i := 0; i < len(b) && i < 5; i++ {
		c := b[i]
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			if v < -1<<31 || v >= 1<<31 {
				return 0, 0, false
			}
			return int32(v), i + 1, true
		}
	}
	return 0, 0, false
}
