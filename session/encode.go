package session

import (
	"encoding/binary"
	"math/bits"
	"strings"

	"github.com/tracemark/tracemark/internal/cstring"
	"github.com/tracemark/tracemark/internal/probeabi"
	"github.com/tracemark/tracemark/internal/rt"
	"github.com/tracemark/tracemark/marker"
)

// Record layout. Every record is a CTF 1.8 event, byte-aligned and
// little-endian, so the buffers hold finished CTF and a packet is just a
// header plus records:
//
//	uint16 class id | uint64 timestamp (ns) | [context] | fields... | [uint8 _truncated]
//
// The context, in the sessions that record one (WithEventContext), is the
// CTF stream event context: the shard's constant block (contextBlocks)
// copied, with the thread id written into its slots (ctxLayout).
//
// Fields in schema order: integers and floats in their size, bool as one
// byte, duration as int64 ns, strings NUL-terminated (cut at the cap or at
// an embedded NUL), byte slices as a uint32 length and the bytes (cut at
// the cap). A record with a field cut carries the class id with twinBit
// set and ends with a bitmask of the fields that were cut, so truncation
// is never silent; the others carry the plain id and no trailer, so that
// trace readers show the bitmask only where something was cut.
const (
	headerSize      = 10
	timestampOffset = 2
	// twinBit, or'ed into a class id, is the id of the class's truncated
	// records (ctf.EventClass.TruncatedID); class ids stay below it.
	twinBit = 1 << 15
)

// layout is what encoding needs to know about a marker's schema, worked
// out once per class so that the per-event work is a short loop over
// fields with a switch on their size, and what the drain needs to measure
// records (recordSize).
type layout struct {
	ops       []fieldOp // the fields after the leading 8-byte ones (words)
	words     []wordOp  // the 8-byte fields before it, at fixed offsets
	restOff   int       // where ops start in the record
	varOps    []fieldOp // the string and byte fields
	fixed     int       // header plus fixed-size fields plus trailer (if cut)
	max       int       // the largest record: every variable field at the cap
	variable  bool      // has string or byte fields, hence the _truncated trailer
	ctx       ctxLayout // the context block after the header (WithEventContext)
	maxString int
	varOff    int        // where the first string or bytes field starts in the record
	walk      []sizeStep // the fields from it on, for recordSize
}

// sizeStep is a string or bytes field and the fixed-size fields after it,
// up to the next string or bytes field: what recordSize steps over.
type sizeStep struct {
	bytes bool // a uint32 length and the bytes; else a NUL-terminated string
	fixed int  // the size of the fixed-size fields that follow
}

// wordOp copies one 8-byte field to a fixed offset of the record.
type wordOp struct {
	idx uint8
	off uint16
}

// fieldOp says how to encode one field.
type fieldOp struct {
	idx  uint8 // field index
	size uint8 // 1, 2, 4 or 8 for fixed-size kinds, or opString, opBytes
}

const (
	opString = 0
	opBytes  = 0xff
	// opID, or'ed with the size (8 or 16), marks a trace or span id.
	opID = 0x40
)

// newLayout returns the layout of m's records, whose fields start after
// the header and the context block cx.
func newLayout(m *marker.Info, maxString int, cx ctxLayout) layout {
	hdr := headerSize + int(cx.size)
	l := layout{fixed: hdr, maxString: maxString, ctx: cx, varOff: hdr}
	for i := range m.NumFields() {
		k := m.Field(i).Kind
		op := fieldOp{idx: uint8(i), size: uint8(k.Bits() / 8)}
		n := k.Bits() / 8 // the size of a fixed-size field
		switch k {
		case marker.KindString:
			op.size = opString
			l.fixed++ // the NUL
		case marker.KindBytes:
			op.size = opBytes
			l.fixed += 4 // the length
		case marker.KindTraceID, marker.KindSpanID:
			// Byte arrays are copied as bytes, never as an integer:
			// not among the words, whatever their size.
			op.size = opID | uint8(n)
			l.fixed += n
		default:
			l.fixed += n
		}
		switch {
		case op.size == opString || op.size == opBytes:
			l.varOps = append(l.varOps, op)
			l.walk = append(l.walk, sizeStep{bytes: op.size == opBytes})
		case len(l.walk) == 0:
			l.varOff += n
		default:
			l.walk[len(l.walk)-1].fixed += n
		}
		// Leading fields sit at fixed offsets; the 8-byte ones among them,
		// the commonest, are copied without a switch.
		if len(l.varOps) == 0 && len(l.ops) == 0 && op.size == 8 {
			l.words = append(l.words, wordOp{idx: uint8(i), off: uint16(hdr + 8*len(l.words))})
			continue
		}
		if len(l.ops) == 0 {
			l.restOff = hdr + 8*len(l.words)
		}
		l.ops = append(l.ops, op)
	}
	if len(l.ops) == 0 {
		l.restOff = hdr + 8*len(l.words)
	}
	if len(l.varOps) > 0 {
		l.variable = true
		l.fixed++
	}
	l.max = l.fixed + len(l.varOps)*maxString
	return l
}

// measure returns the exact record size of the event with fields f.
func (l *layout) measure(f *probeabi.Fields) int {
	size := l.fixed
	anyCut := false
	for _, op := range l.varOps {
		var n int
		var cut bool
		if op.size == opString {
			n, cut = l.cutString(*(*string)(f[op.idx&(marker.MaxFields-1)]))
		} else {
			n, cut = l.cutBytes(*(*[]byte)(f[op.idx&(marker.MaxFields-1)]))
		}
		size += n
		anyCut = anyCut || cut
	}
	if l.variable && !anyCut {
		size-- // no trailer
	}
	return size
}

// recordSize returns the size of the record of a variable layout at the
// start of b, with the _truncated trailer if twin (the record carries the
// twin id), or false if the record does not fit in b: what
// ctf.RecordSizeFrom returns, or where it fails. It steps from string to
// string (or bytes), where RecordSizeFrom switches on every field: the
// drain measures every such record.
func (l *layout) recordSize(b []byte, twin bool) (int, bool) {
	p := l.varOff
	if len(l.walk) == 1 && !l.walk[0].bytes && len(b)-p >= 8 {
		// The commonest shape, one string and fixed-size fields after
		// it, without the loop or a call when the string ends in its
		// first word, as most do.
		if m := zeroBytes(binary.LittleEndian.Uint64(b[p:])); m != 0 {
			p += bits.TrailingZeros64(m)>>3 + 1 + l.walk[0].fixed
			if twin {
				p++
			}
			return p, p <= len(b)
		}
	}
	for _, st := range l.walk {
		if p > len(b) {
			return 0, false
		}
		if st.bytes {
			if len(b)-p < 4 {
				return 0, false
			}
			n := binary.LittleEndian.Uint32(b[p:])
			if uint64(n) > uint64(len(b)-p-4) {
				return 0, false
			}
			p += 4 + int(n)
		} else {
			j := cstring.Index(b[p:])
			if j < 0 {
				return 0, false
			}
			p += j + 1
		}
		p += st.fixed
	}
	if twin {
		p++
	}
	return p, p <= len(b)
}

// cutString returns how much of a string field is recorded: up to the cap,
// and up to the first NUL, because a CTF string ends there.
func (l *layout) cutString(s string) (n int, cut bool) {
	n = len(s)
	if n > l.maxString {
		n, cut = l.maxString, true
	}
	if z := indexNUL(s[:n]); z >= 0 {
		n, cut = z, true
	}
	return n, cut
}

// cutBytes returns how much of a byte-slice field is recorded.
func (l *layout) cutBytes(b []byte) (n int, cut bool) {
	if len(b) > l.maxString {
		return l.maxString, true
	}
	return len(b), false
}

// encode writes the record of the event with fields f into dst, which
// must be at least as long as the record (measure's size, or l.max), and
// returns the record's size and its _truncated bits (bit i: field i was
// cut). A record with bits gets the twin id (id|twinBit) and the trailer.
// ctx is the shard's context block (contextBlocks.block), which goes
// after the header with the thread id in its slots. With the thread id,
// encode must run pinned (see rt.ThreadID).
func (l *layout) encode(dst []byte, id uint16, ts int64, f *probeabi.Fields, ctx []byte) (size int, truncated uint8) {
	binary.LittleEndian.PutUint16(dst, id)
	binary.LittleEndian.PutUint64(dst[timestampOffset:], uint64(ts))
	if l.ctx.size != 0 {
		// The block is a few words: copied as words, without a call to
		// memmove, the last one overlapping the one before.
		d := dst[headerSize:]
		switch n := len(ctx); {
		case n == 4:
			binary.LittleEndian.PutUint32(d, binary.LittleEndian.Uint32(ctx))
		case n >= 8:
			for i := 0; i < n-8; i += 8 {
				binary.LittleEndian.PutUint64(d[i:], binary.LittleEndian.Uint64(ctx[i:]))
			}
			binary.LittleEndian.PutUint64(d[n-8:], binary.LittleEndian.Uint64(ctx[n-8:]))
		default:
			copy(d, ctx)
		}
		if l.ctx.ntid != 0 {
			tid := uint32(rt.ThreadID())
			binary.LittleEndian.PutUint32(dst[headerSize+int(l.ctx.tid[0]):], tid)
			if l.ctx.ntid > 1 {
				binary.LittleEndian.PutUint32(dst[headerSize+int(l.ctx.tid[1]):], tid)
			}
		}
	}
	for _, w := range l.words {
		binary.LittleEndian.PutUint64(dst[w.off:], *(*uint64)(f[w.idx&(marker.MaxFields-1)]))
	}
	off := l.restOff
	for _, op := range l.ops {
		p := f[op.idx&(marker.MaxFields-1)]
		switch op.size {
		case 8:
			binary.LittleEndian.PutUint64(dst[off:], *(*uint64)(p))
			off += 8
		case 4:
			binary.LittleEndian.PutUint32(dst[off:], *(*uint32)(p))
			off += 4
		case 2:
			binary.LittleEndian.PutUint16(dst[off:], *(*uint16)(p))
			off += 2
		case 1:
			dst[off] = *(*uint8)(p)
			off++
		case opString:
			s := *(*string)(p)
			// Strings of 8 to 16 bytes, the commonest, are copied and
			// checked for a NUL as two overlapping words, without calls.
			if n := len(s); uint(n-8) <= 8 && n <= l.maxString {
				w0 := binary.LittleEndian.Uint64([]byte(s[:8]))
				w1 := binary.LittleEndian.Uint64([]byte(s[n-8:]))
				if !hasZeroByte(w0) && !hasZeroByte(w1) {
					binary.LittleEndian.PutUint64(dst[off:], w0)
					binary.LittleEndian.PutUint64(dst[off+n-8:], w1)
					dst[off+n] = 0
					off += n + 1
					continue
				}
			}
			n, cut := l.cutString(s)
			if cut {
				truncated |= 1 << op.idx
			}
			copy(dst[off:off+n], s)
			dst[off+n] = 0
			off += n + 1
		case opID | 16:
			copy(dst[off:off+16], (*[16]byte)(p)[:])
			off += 16
		case opID | 8:
			copy(dst[off:off+8], (*[8]byte)(p)[:])
			off += 8
		case opBytes:
			b := *(*[]byte)(p)
			n, cut := l.cutBytes(b)
			if cut {
				truncated |= 1 << op.idx
			}
			binary.LittleEndian.PutUint32(dst[off:], uint32(n))
			copy(dst[off+4:off+4+n], b)
			off += 4 + n
		}
	}
	if truncated != 0 {
		binary.LittleEndian.PutUint16(dst, id|twinBit)
		dst[off] = truncated
		off++
	}
	return off, truncated
}

// hasZeroByte reports whether one of the eight bytes of w is zero.
func hasZeroByte(w uint64) bool { return zeroBytes(w) != 0 }

// zeroBytes flags the zero bytes of w (bit 7 of each byte): its lowest
// flag is the first zero byte; bytes above it may be flagged wrongly.
func zeroBytes(w uint64) uint64 { return (w - 0x0101010101010101) &^ w & 0x8080808080808080 }

// indexNUL is strings.IndexByte(s, 0), faster for the short strings most
// fields hold: it tests eight bytes at a time, without a function call, for
// the first 64 bytes before handing a long string to strings.IndexByte.
func indexNUL(s string) int {
	i := 0
	for limit := min(len(s), 64); i+8 <= limit; i += 8 {
		w := binary.LittleEndian.Uint64([]byte(s[i : i+8]))
		// The lowest bit of the zero-byte mask is exact (only bytes
		// above a zero byte can be flagged wrongly): it is the first NUL.
		if hasZeroByte(w) {
			break
		}
	}
	for end := min(len(s), i+8); i < end; i++ {
		if s[i] == 0 {
			return i
		}
	}
	if j := strings.IndexByte(s[i:], 0); j >= 0 {
		return i + j
	}
	return -1
}
