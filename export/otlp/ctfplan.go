package otlp

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/cstring"
)

// AddCTF's common records take a planned path: for a class whose fields
// are all of the usual shapes (numbers, strings, byte arrays and
// sequences, keys and event name of at most 16 bytes encoded), the work
// per field is worked out once, when its first record comes, into a
// ctfPlan: an op per field, and an upper bound of the bytes a record
// appends (a string or bytes value it encodes is shorter than 128 bytes,
// since its KeyValue's size is one byte). A record then reserves that room once
// and is encoded by index, without a reserve, a type switch and a role
// check per field; the general path (encodeCTF) remains for what a plan
// leaves out (an unsigned value sent as text, a truncated record, a
// KeyValue of 128 bytes or more) and for every error, which it reports
// as before. The two paths encode the same bytes (TestAddCTFSameAsBegin
// compares them with the values given one by one).

// ctfOp is the work for one field of a planned class.
type ctfOp struct {
	kind  uint8  // opInt, ...
	size  uint16 // the bytes of a number or fixed array in the record
	shift uint8  // a number's 64 - its bits (opInt, opUint: to cut and extend it)
	head  uint8  // the bytes of hdr an attribute starts with
	key   uint8  // the length of its encoded key
	trace bool   // an id op's field is the trace id, not the span id
	hdr   attrHead
}

// attrHead is the start of an attribute's encoding, up to its value, as
// three words: the KeyValue's tag and size, the key, the value's tag and
// size, the AnyValue's tag (and a string's or bytes' size), of at most
// 2+16+4 bytes. The sizes that depend on the value are patched after it
// is stored, with one bounds check for the whole head.
type attrHead [3]uint64

// newAttrHead returns the head of an attribute with the encoded key k
// (of at most 16 bytes), of AnyValue field anyField, and how many bytes it
// takes: the AnyValue's size byte is there for strings and bytes. The
// sizes are those of a value of size n (its varint's length, for
// integers).
func newAttrHead(k shortPiece, anyField byte, wire byte, n int) (attrHead, uint8) {
	var b [40]byte
	b[0] = logAttributes<<3 | wireBytes
	w := k.put(b[:], 2)
	valueSize := 1 + n
	if wire == wireBytes {
		valueSize = 2 + n
	}
	b[1] = byte(k.n + 2 + valueSize)
	b[w], b[w+1], b[w+2] = 2<<3|wireBytes, byte(valueSize), anyField<<3|wire
	w += 3
	if wire == wireBytes {
		b[w] = byte(n)
		w++
	}
	return attrHead{binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b[16:])}, uint8(w)
}

// put stores the head's 24 bytes at d[0:24].
func (h *attrHead) put(d []byte) {
	_ = d[23]
	binary.LittleEndian.PutUint64(d, h[0])
	binary.LittleEndian.PutUint64(d[8:], h[1])
	binary.LittleEndian.PutUint64(d[16:], h[2])
}

// Ops.
const (
	opSkip      = iota // a number not sent (no field, or an id role)
	opInt              // a signed integer, as an int attribute
	opUint             // an unsigned integer, as an int attribute if it fits
	opBool             // an unsigned integer, as a bool attribute
	opF32              // a float32, as a double attribute
	opF64              // a float64, as a double attribute
	opStr              // a string attribute
	opFixed            // a fixed array: a bytes attribute
	opSeq              // a sequence: a bytes attribute
	opStrID            // a string that may be the trace or span id
	opFixedID          // a fixed array that may be the id
	opSeqID            // a sequence that may be the id
	opStrSkip          // a string not sent (no field)
	opFixedSkip        // a fixed array not sent
	opSeqSkip          // a sequence not sent
)

// ctfPlan is the planned path for one class and one list of field types.
type ctfPlan struct {
	c     *prepared
	types []ctf.FieldType // a copy: the plan holds for these only
	ops   []ctfOp         // nil: the class takes the general path
	room  int             // the most bytes a record appends
	fast  bool            // every op is one fastRecords encodes
}

// planKey finds a builder's plan.
type planKey struct {
	c *Class
	n int // len(types)
	t *ctf.FieldType
}

// plan returns the plan for cl's records of the given types; its ops are
// nil if they take the general path.
func (b *LogBuilder) plan(cl *Class, types []ctf.FieldType) *ctfPlan {
	k := planKey{c: cl, n: len(types)}
	if len(types) > 0 {
		k.t = &types[0]
	}
	if b.lastPlan != nil && b.lastPlanKey == k && slices.Equal(b.lastPlan.types, types) {
		return b.lastPlan
	}
	// A plan's class is as b's exporter prepared it, which stays so
	// unless the Class was overwritten: then it is prepared again (as
	// the general path would), and planned again.
	pl := b.plans[k]
	if pl == nil || !slices.Equal(pl.types, types) || pl.c != cl.loadPrep(b.e) {
		pl = newCTFPlan(b.e.prepared(cl), types)
		if b.plans == nil {
			b.plans = map[planKey]*ctfPlan{}
		}
		if len(b.plans) >= maxPlans {
			clear(b.plans) // a caller making types for every record
		}
		b.plans[k] = pl
	}
	b.lastPlanKey, b.lastPlan = k, pl
	return pl
}

// maxPlans bounds a builder's plans.
const maxPlans = 1024

// newCTFPlan plans the records of class c with fields of the given types.
func newCTFPlan(c *prepared, types []ctf.FieldType) *ctfPlan {
	pl := &ctfPlan{c: c, types: slices.Clone(types)}
	if c.shortName.n == 0 {
		return pl
	}
	ops := make([]ctfOp, len(types))
	// The record's tag, a byte of size, the time; the observed time and
	// the name (stored as 16 bytes); the ids.
	room := 11 + 9 + 16 + 2*(2+16)
	for i := range types {
		t := &types[i]
		if t.Validate() != nil {
			return pl // an error, which the general path reports
		}
		op := &ops[i]
		var f *fieldEnc
		if i < len(c.fields) {
			f = &c.fields[i]
			if f.short.n == 0 {
				return pl
			}
			op.key = uint8(f.short.n)
		}
		// At most: the KeyValue's tag and size, the key as 16 bytes,
		// the value's tag and size, the AnyValue's tag (and size), and a
		// varint, a double or the bytes of a string or bytes value,
		// which are fewer than 128 (its KeyValue's size is one byte).
		room += attrRoom
		if t.Kind == ctf.String || t.Kind == ctf.Bytes {
			room += 0x80
		}
		switch t.Kind {
		case ctf.Int, ctf.Uint, ctf.Float:
			n := t.Bits / 8
			op.size, op.shift = uint16(n), uint8(64-t.Bits)
			switch {
			case f == nil || f.role > roleBool:
				op.kind = opSkip
			case t.Kind == ctf.Int:
				op.kind = opInt
			case t.Kind == ctf.Uint && f.role == roleBool:
				op.kind = opBool
			case t.Kind == ctf.Uint:
				op.kind = opUint
			case n == 4:
				op.kind = opF32
			default:
				op.kind = opF64
			}
		case ctf.String:
			op.kind = bytesOp(f, opStr, opStrID, opStrSkip)
		case ctf.Bytes:
			if t.Bits == 0 {
				op.kind = bytesOp(f, opSeq, opSeqID, opSeqSkip)
			} else {
				op.kind, op.size = bytesOp(f, opFixed, opFixedID, opFixedSkip), uint16(t.Bits/8)
			}
		}
		op.trace = f != nil && f.role == roleTrace
		switch op.kind {
		case opInt, opUint:
			op.hdr, op.head = newAttrHead(f.short, anyInt, wireVarint, 1)
		case opBool:
			op.hdr, op.head = newAttrHead(f.short, anyBool, wireVarint, 1)
		case opF32, opF64:
			op.hdr, op.head = newAttrHead(f.short, anyDouble, wireFixed64, 8)
		case opStr:
			op.hdr, op.head = newAttrHead(f.short, anyString, wireBytes, 0)
		case opFixed, opSeq:
			op.hdr, op.head = newAttrHead(f.short, anyBytes, wireBytes, 0)
		}
	}
	pl.fast = true
	for _, op := range ops {
		pl.fast = pl.fast && fastKind(op.kind)
	}
	pl.ops, pl.room = ops, room
	return pl
}

// bytesOp is the op of a string or bytes field: an attribute, maybe an
// id, or not sent.
func bytesOp(f *fieldEnc, attr, id, skip uint8) uint8 {
	switch {
	case f == nil:
		return skip
	case f.role > roleBool:
		return id
	}
	return attr
}

// ctfRun says where addPlanned finds its records and their times.
type ctfRun struct {
	// head is the bytes before each record's fields: 0 for a record
	// alone (its time is timeNS), or those of the event header and
	// context of a packet's records, each of id id, whose timestamps are
	// ns after epoch (ns since the Unix epoch).
	head    int
	id      uint16
	epoch   int64
	timeNS  int64
	observe int64 // the records' observed time
	trailer bool  // each record's fields are followed by its trailer byte
	max     int   // at most this many records
}

// addPlanned adds the records at the start of data, as run says, by the
// plan, up to run.max of them: it returns how many it added and the bytes
// they take. It stops at a record of another id, at one that needs the
// general path (of which it appended nothing), and where data cannot
// hold another record's head. The queue has room (the caller checked).
// A packet's records of a class of numbers, strings and ids take the loop
// without calls (addFast), and the planned loop (addRecords) those it
// leaves, one at a time.
func (b *LogBuilder) addPlanned(pl *ctfPlan, data []byte, run *ctfRun) (k, off int) {
	c := pl.c
	for len(b.scopes) <= c.scopeID {
		b.scopes = append(b.scopes, builderScope{})
		b.lastClass = nil // lastSB points into the old array
	}
	sb := &b.scopes[c.scopeID]
	if !pl.fast || run.head == 0 {
		return b.addRecords(pl, sb, data, run, run.max)
	}
	for k < run.max {
		n, m := b.addFast(pl, sb, data[off:], run, run.max-k)
		if k, off = k+n, off+m; k == run.max {
			break
		}
		if n, m = b.addRecords(pl, sb, data[off:], run, 1); n == 0 {
			break
		}
		k, off = k+n, off+m
	}
	return k, off
}

// addRecords is addPlanned's planned loop, for up to max records, into
// sb. The loop over records is here, not in a caller, because the work
// of a record outside its fields was a fifth of it with a call per
// record; the loop over fields is not (planFields).
func (b *LogBuilder) addRecords(pl *ctfPlan, sb *builderScope, data []byte, run *ctfRun, max int) (k, off int) {
	c := pl.c
	for ; k < max; k++ {
		rec, timeNS := data[off:], run.timeNS
		if run.head > 0 {
			if len(rec) < run.head || binary.LittleEndian.Uint16(rec) != run.id {
				break
			}
			timeNS = run.epoch + int64(binary.LittleEndian.Uint64(rec[2:]))
			rec = rec[run.head:]
		}
		r, at := reserve(sb.recs, pl.room)
		r[at], r[at+1], r[at+2] = 2<<3|wireBytes, 0, logTime<<3|wireFixed64
		binary.LittleEndian.PutUint64(r[at+3:], uint64(timeNS))
		var ids recordIDs
		w, q, ok := planFields(pl.ops, c.fields, r, at+11, rec, &ids)
		if !ok {
			break
		}
		if run.trailer {
			if q >= len(rec) || rec[q] != 0 {
				break // the general path reports or encodes it
			}
			q++
		}
		if ids.trace != nil {
			r[w], r[w+1] = logTraceID<<3|wireBytes, 16
			w += 2 + copy(r[w+2:], ids.trace)
			if ids.span != nil {
				r[w], r[w+1] = logSpanID<<3|wireBytes, 8
				w += 2 + copy(r[w+2:], ids.span)
			}
		}
		r[w] = logObserved<<3 | wireFixed64
		binary.LittleEndian.PutUint64(r[w+1:], uint64(run.observe))
		w = c.shortName.put(r, w+9)
		sb.recs = r[:w]
		b.sized(sb, at+1)
		off += run.head + q
	}
	return k, off
}

// recordIDs are the trace and span ids a record's fields give.
type recordIDs struct{ trace, span []byte }

// planFields encodes the fields at the start of rec by ops (the fields
// of the class they are for) at r[w:], which has the room the plan
// reserves, and returns the offsets after them in r and rec, or false if
// the record needs the general path. It is addPlanned's loop over
// fields, in a function of its own so that the compiler keeps its few
// variables in registers.
func planFields(ops []ctfOp, fields []fieldEnc, r []byte, w int, rec []byte, ids *recordIDs) (int, int, bool) {
	q := 0
	for i := range ops {
		op := &ops[i]
		switch op.kind {
		case opInt, opUint:
			// The commonest fields, in line: read as a word where
			// the record holds one, cut to the field's bits by the
			// shifts.
			n := int(op.size)
			var x uint64
			switch left := len(rec) - q; {
			case left >= 8:
				x = binary.LittleEndian.Uint64(rec[q:])
			case left >= n:
				x = readUint(rec[q:], n)
			default:
				return 0, 0, false
			}
			q += n
			s := op.shift & 63
			if op.kind == opInt {
				x = uint64(int64(x<<s) >> s)
			} else if x = x << s >> s; x > math.MaxInt64 {
				return 0, 0, false // sent as text
			}
			d := r[w : w+attrRoom : w+attrRoom]
			op.hdr.put(d)
			h := int(op.head)
			e := putVarint(d, h, x)
			vl := byte(e - h)
			d[1] = op.key + 3 + vl
			d[h-2] = 1 + vl
			w += e
		case opStr:
			// A string of up to 7 bytes, with 8 in the record from
			// it, in line: Go's calls keep no register, so a call
			// here made the loop store and reload what it holds.
			if len(rec)-q >= 8 {
				v := binary.LittleEndian.Uint64(rec[q:])
				if m := (v - 0x0101010101010101) &^ v & 0x8080808080808080; m != 0 {
					j := bits.TrailingZeros64(m) >> 3 // the first NUL, as in cstring
					d := r[w : w+24+16 : w+24+16]
					h := op.putBytesHead(d, j)
					binary.LittleEndian.PutUint64(d[h:], v)
					w += h + j
					q += j + 1
					continue
				}
			}
			j := cstring.Index(rec[q:])
			if j < 0 {
				return 0, 0, false
			}
			var ok bool
			if w, ok = putBytes(r, w, op, rec, q, j); !ok {
				return 0, 0, false
			}
			q += j + 1
		case opBool, opF32, opF64, opSkip:
			n := int(op.size)
			if len(rec)-q < n {
				return 0, 0, false
			}
			w = putNumber(r, w, op, readUint(rec[q:], n))
			q += n
		default:
			// Byte arrays and sequences, strings that may be ids,
			// and string and bytes fields not sent.
			var v []byte
			var ok bool
			if v, q, ok = bytesAt(op, rec, q); !ok {
				return 0, 0, false
			}
			switch op.kind {
			case opFixed, opSeq:
				if w, ok = putBytes(r, w, op, rec, q-len(v), len(v)); !ok {
					return 0, 0, false
				}
			case opStrID, opFixedID, opSeqID:
				if fields[i].role == roleTrace {
					if ids.trace == nil && len(v) == 16 {
						ids.trace = v
					}
				} else if ids.span == nil && len(v) == 8 {
					ids.span = v
				}
			}
		}
	}
	return w, q, true
}

// attrRoom is the room a number's attribute may take (newCTFPlan
// reserves it for every field): a head of at most 22 bytes stored as 24,
// and a varint of at most 10 bytes after it.
const attrRoom = 2 + 16 + 4 + 10

// putNumber encodes a bool, float or skipped number field of value bits
// x at r[w:] as op says, and returns the offset after it.
func putNumber(r []byte, w int, op *ctfOp, x uint64) int {
	if op.kind == opSkip {
		return w
	}
	d := r[w : w+attrRoom : w+attrRoom]
	op.hdr.put(d)
	h := int(op.head)
	if op.kind == opBool {
		d[h] = 0
		if x != 0 {
			d[h] = 1
		}
		return w + h + 1
	}
	if op.kind == opF32 {
		x = math.Float64bits(float64(math.Float32frombits(uint32(x))))
	}
	binary.LittleEndian.PutUint64(d[h:], x)
	return w + h + 8
}

// putBytesHead stores the head of a string or bytes attribute of n
// bytes (its KeyValue's size one byte) at d[0:24], and returns its
// length.
func (op *ctfOp) putBytesHead(d []byte, n int) int {
	op.hdr.put(d)
	h := int(op.head)
	d[1], d[h-3], d[h-1] = op.key+4+byte(n), byte(2+n), byte(n)
	return h
}

// putBytes encodes a string or bytes attribute whose value is the n
// bytes at rec[q:], at r[w:], and returns the offset after it, or false
// if its KeyValue is too long for a size of one byte. A value of up to
// 16 bytes is copied as two words when rec holds 16 bytes from q (the
// room reserved allows for it): a call to memmove for a few bytes cost
// more than the rest of the field.
func putBytes(r []byte, w int, op *ctfOp, rec []byte, q, n int) (int, bool) {
	kv := int(op.key) + 4 + n
	if kv >= 0x80 {
		return w, false
	}
	w += op.putBytesHead(r[w:w+24:w+24], n)
	if n <= 16 && len(rec)-q >= 16 {
		binary.LittleEndian.PutUint64(r[w:], binary.LittleEndian.Uint64(rec[q:]))
		binary.LittleEndian.PutUint64(r[w+8:], binary.LittleEndian.Uint64(rec[q+8:]))
		return w + n, true
	}
	return w + copy(r[w:], rec[q:q+n]), true
}

// bytesAt reads the string, fixed array or sequence of op at rec[q:]:
// its bytes and the offset after it, or false if rec does not hold it.
func bytesAt(op *ctfOp, rec []byte, q int) ([]byte, int, bool) {
	switch op.kind {
	case opStrID, opStrSkip:
		j := cstring.Index(rec[q:])
		if j < 0 {
			return nil, 0, false
		}
		return rec[q : q+j : q+j], q + j + 1, true
	case opFixed, opFixedID, opFixedSkip:
		n := int(op.size)
		if len(rec)-q < n {
			return nil, 0, false
		}
		return rec[q : q+n : q+n], q + n, true
	}
	if len(rec)-q < 4 {
		return nil, 0, false
	}
	n := binary.LittleEndian.Uint32(rec[q:])
	if uint64(n) > uint64(len(rec)-q-4) {
		return nil, 0, false
	}
	q += 4
	return rec[q : q+int(n) : q+int(n)], q + int(n), true
}
