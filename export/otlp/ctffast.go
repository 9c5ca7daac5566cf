package otlp

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
)

// A packet's run of records of a class whose fields are all numbers,
// strings, trace and span ids (no byte arrays) takes a loop that calls
// nothing: fastRecords. Go's calls keep no register, so the planned loop
// (addPlanned, with its call per record and its calls for the rarer
// fields) stored and reloaded its state around every one: about 580
// instructions for scripts/load's event of three fields, against 360 in
// a loop written for that event alone. fastRecords stops at a record it
// leaves to the planned path (a string of 8 bytes or more, an unsigned
// value sent as text, a record of 128 bytes or more, a bad trailer), and
// the planned path takes that one; both encode the same bytes
// (TestFastSameAsPlanned).

// fastKind says whether planFields's op kind k is one fastRecords
// encodes.
func fastKind(k uint8) bool {
	switch k {
	case opSkip, opInt, opUint, opBool, opF32, opF64, opStr, opStrSkip, opFixedID, opFixedSkip:
		return true
	}
	return false
}

// addFast adds the records at the start of data, as run says (a packet's
// run: run.head > 0), by fastRecords, up to max of them, and returns how
// many it added and the bytes they take.
func (b *LogBuilder) addFast(pl *ctfPlan, sb *builderScope, data []byte, run *ctfRun, max int) (k, off int) {
	for k < max {
		chunk := min(max-k, plannedChunk)
		r, w := reserve(sb.recs, pl.room*chunk)
		ends := slices.Grow(sb.ends, chunk)
		base := len(ends)
		n, e, m := fastRecords(pl.ops, &pl.c.shortName, r, w, ends[:base+chunk], base, data[off:], run)
		sb.recs, sb.ends = r[:e], ends[:base+n]
		b.n += n
		k, off = k+n, off+m
		if n < chunk {
			break
		}
	}
	return k, off
}

// fastRecords encodes the records at the start of data by ops at r[w:],
// as many as ends has room for from index base (r has the plan's room for
// each), storing where each ends in ends, and returns how many it
// encoded, the offset after them in r and the bytes of data they took.
// It stops, leaving nothing of it, at a record of another id, at one
// data cannot hold, and at one it leaves to the planned path.
func fastRecords(ops []ctfOp, name *shortPiece, r []byte, w int, ends []int32, base int, data []byte, run *ctfRun) (n, _, off int) {
	head, id, epoch, observe, trailer := run.head, run.id, run.epoch, run.observe, run.trailer
	for ; base+n < len(ends); n++ {
		rec := data[off:]
		if len(rec) < head || binary.LittleEndian.Uint16(rec) != id {
			return n, w, off
		}
		ts := epoch + int64(binary.LittleEndian.Uint64(rec[2:]))
		rec = rec[head:]
		at := w
		r[at], r[at+2] = 2<<3|wireBytes, logTime<<3|wireFixed64
		binary.LittleEndian.PutUint64(r[at+3:], uint64(ts))
		e, q := at+11, 0
		tq, sq := -1, -1 // where the trace and span ids are in rec
		for i := range ops {
			op := &ops[i]
			switch op.kind {
			case opInt, opUint, opBool, opF32, opF64, opSkip:
				// A number, read as a word where the record holds
				// one and cut to the field's bits by the shifts.
				size := int(op.size)
				var x uint64
				switch left := len(rec) - q; {
				case left >= 8:
					x = binary.LittleEndian.Uint64(rec[q:])
				case left >= size:
					x = readUint(rec[q:], size)
				default:
					return n, w, off
				}
				q += size
				s := op.shift & 63
				switch op.kind {
				case opSkip:
					continue
				case opInt:
					x = uint64(int64(x<<s) >> s)
				case opF32:
					x = math.Float64bits(float64(math.Float32frombits(uint32(x))))
				default:
					if x = x << s >> s; op.kind == opUint && x > math.MaxInt64 {
						return n, w, off // sent as text
					}
				}
				d := r[e : e+attrRoom : e+attrRoom]
				op.hdr.put(d)
				h := int(op.head)
				switch op.kind {
				case opF32, opF64:
					binary.LittleEndian.PutUint64(d[h:], x)
					e += h + 8
				case opBool:
					d[h] = byte(min(x, 1))
					e += h + 1
				default:
					v := putVarint(d, h, x)
					vl := byte(v - h)
					d[1] = op.key + 3 + vl
					d[h-2] = 1 + vl
					e += v
				}
			case opFixedID, opFixedSkip:
				// A fixed array not sent: a trace id or span id if it
				// is the first of its role of the right length.
				size := int(op.size)
				if len(rec)-q < size {
					return n, w, off
				}
				if op.kind == opFixedID {
					if op.trace {
						if tq < 0 && size == 16 {
							tq = q
						}
					} else if sq < 0 && size == 8 {
						sq = q
					}
				}
				q += size
			default: // opStr, opStrSkip
				// Up to 7 bytes, with 8 in the record from them.
				if len(rec)-q < 8 {
					return n, w, off
				}
				v := binary.LittleEndian.Uint64(rec[q:])
				m := (v - 0x0101010101010101) &^ v & 0x8080808080808080
				if m == 0 {
					return n, w, off
				}
				j := bits.TrailingZeros64(m) >> 3 // the first NUL, as in cstring
				q += j + 1
				if op.kind == opStrSkip {
					continue
				}
				d := r[e : e+24+16 : e+24+16]
				h := op.putBytesHead(d, j)
				binary.LittleEndian.PutUint64(d[h:], v)
				e += h + j
			}
		}
		if trailer {
			if q >= len(rec) || rec[q] != 0 {
				return n, w, off
			}
			q++
		}
		if tq >= 0 {
			r[e], r[e+1] = logTraceID<<3|wireBytes, 16
			binary.LittleEndian.PutUint64(r[e+2:], binary.LittleEndian.Uint64(rec[tq:]))
			binary.LittleEndian.PutUint64(r[e+10:], binary.LittleEndian.Uint64(rec[tq+8:]))
			e += 18
			if sq >= 0 {
				r[e], r[e+1] = logSpanID<<3|wireBytes, 8
				binary.LittleEndian.PutUint64(r[e+2:], binary.LittleEndian.Uint64(rec[sq:]))
				e += 10
			}
		}
		r[e] = logObserved<<3 | wireFixed64
		binary.LittleEndian.PutUint64(r[e+1:], uint64(observe))
		e = name.put(r, e+9)
		size := e - at - 2
		if size >= 0x80 {
			return n, w, off // a size of two bytes: sized moves the record up
		}
		r[at+1] = byte(size)
		ends[base+n] = int32(e)
		w, off = e, off+head+q
	}
	return n, w, off
}

// plannedChunk is how many records addFast makes room for at once.
const plannedChunk = 64
