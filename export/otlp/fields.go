package otlp

import (
	"encoding/binary"
	"math"

	"github.com/tracemark/tracemark/ctf"
)

// Field roles: what a field of a class becomes in its log record.
const (
	roleAttr  = iota // an attribute
	roleBool         // an attribute, a bool if the value is unsigned
	roleTrace        // the trace id, if 16 bytes long
	roleSpan         // the span id, if 8 bytes long
)

// fieldEnc is a field as Begin's records encode it, worked out once.
type fieldEnc struct {
	key   []byte     // the key field of its KeyValue, encoded
	short shortPiece // the same, if at most 16 bytes
	role  uint8
}

// Begin starts encoding an event of class cl into b field by field, for a
// caller that reads the values out of its own format (the tracemark CLI
// reads them from the CTF records it receives) and would otherwise build a
// []ctf.Value for Add: give the fields in the order of cl.Fields with
// Int, Uint, Float, Str and Bytes (as their CTF kinds say), then call End.
// The record is as Add encodes it from the same values, timestamp timeNS
// and observed timestamp observed. Byte slices must stay valid until End;
// fields not given before End are left out, as Add leaves out missing
// values. A record not ended is discarded by the next Begin, Add, AddCTF
// or Commit.
//
// As with Add, only the log record is encoded: for the events of a class
// with Span or StartKeys, call Exporter.SpanOf too.
//
// Begin returns false if the exporter's queue is full (and not
// WithBlock): the event is not encoded, the calls up to End do nothing,
// and Commit counts it as dropped.
func (b *LogBuilder) Begin(cl *Class, timeNS, observed int64) bool {
	b.abandon()
	if b.e.full.Load() {
		b.skipped++
		return false
	}
	c, sb := b.lastPrep, b.lastSB
	if b.lastClass != cl {
		// Events come in runs of one class: the class is looked up
		// once a run.
		c = b.e.prepared(cl)
		for len(b.scopes) <= c.scopeID {
			b.scopes = append(b.scopes, builderScope{})
		}
		sb = &b.scopes[c.scopeID]
		b.lastClass, b.lastPrep, b.lastSB = cl, c, sb
	}
	// The record's tag, and a byte for its size, which End fills in
	// (and makes room for if it needs more), and its time.
	r, at := reserve(sb.recs, 11)
	r[at], r[at+1], r[at+2] = 2<<3|wireBytes, 0, logTime<<3|wireFixed64
	binary.LittleEndian.PutUint64(r[at+3:], uint64(timeNS))
	sb.recs = r
	b.start = at + 1
	b.cur, b.sb, b.fi, b.observed = c, sb, 0, observed
	return true
}

// abandon discards the record Begin started and End did not finish.
func (b *LogBuilder) abandon() {
	if b.cur != nil {
		b.sb.recs = b.sb.recs[:b.start-1]
		b.cur, b.sb, b.trace, b.span = nil, nil, nil, nil
	}
}

// field returns the next field of the record being encoded, or nil if
// there is none (no record, or every field given).
func (b *LogBuilder) field() *fieldEnc {
	if b.cur == nil || b.fi >= len(b.cur.fields) {
		return nil
	}
	f := &b.cur.fields[b.fi]
	b.fi++
	return f
}

// Int gives the next field's value, a signed integer (ctf.Int).
func (b *LogBuilder) Int(v int64) {
	if f := b.field(); f != nil && f.role <= roleBool {
		b.sb.recs = f.appendInt(b.sb.recs, uint64(v))
	}
}

// appendInt appends the field's attribute with an integer value, as
// appendIntAttribute does.
func (f *fieldEnc) appendInt(r []byte, x uint64) []byte {
	if f.short.n == 0 {
		return appendIntAttribute(r, logAttributes, f.key, x)
	}
	// Key, value tag, AnyValue size, int tag, varint: at most 29 bytes,
	// a size of one byte.
	vl := fastVarintLen(x)
	kv := f.short.n + 3 + vl
	r, at := reserve(r, 2+16+3+10)
	r[at], r[at+1] = logAttributes<<3|wireBytes, byte(kv)
	at = f.short.put(r, at+2)
	r[at], r[at+1], r[at+2] = 2<<3|wireBytes, byte(1+vl), anyInt<<3|wireVarint
	return r[:putVarint(r, at+3, x)]
}

// appendBytes appends the field's attribute with a string or bytes value
// (AnyValue field valField), as appendBytesAttribute does.
func (f *fieldEnc) appendBytes(r []byte, valField int, v []byte) []byte {
	n := 2 + len(v) // AnyValue: tag, size, bytes
	kv := f.short.n + 2 + n
	if f.short.n == 0 || kv >= 0x80 {
		return appendBytesAttribute(r, logAttributes, f.key, valField, v)
	}
	r, at := reserve(r, 2+16+4+len(v))
	r[at], r[at+1] = logAttributes<<3|wireBytes, byte(kv)
	at = f.short.put(r, at+2)
	r[at], r[at+1], r[at+2], r[at+3] = 2<<3|wireBytes, byte(n), byte(valField<<3|wireBytes), byte(len(v))
	at += 4
	return r[:at+copy(r[at:], v)]
}

// Uint gives the next field's value, an unsigned integer (ctf.Uint): a
// bool for a field of kind bool.
func (b *LogBuilder) Uint(v uint64) {
	if f := b.field(); f != nil {
		b.sb.recs = f.appendUint(b.sb.recs, v)
	}
}

// appendUint appends the field's attribute with an unsigned value, if it
// has one.
func (f *fieldEnc) appendUint(r []byte, v uint64) []byte {
	switch {
	case f.role > roleBool:
		return r
	case f.role == roleAttr && v <= math.MaxInt64:
		return f.appendInt(r, v)
	}
	val := ctf.UintValue(v)
	return appendAttribute(r, logAttributes, f.key, f.role == roleBool, &val)
}

// Float gives the next field's value, a floating-point number (ctf.Float).
func (b *LogBuilder) Float(v float64) {
	if f := b.field(); f != nil {
		b.sb.recs = f.appendFloat(b.sb.recs, v)
	}
}

// appendFloat appends the field's attribute with a floating-point value,
// if it has one.
func (f *fieldEnc) appendFloat(r []byte, v float64) []byte {
	if f.role > roleBool {
		return r
	}
	val := ctf.FloatValue(v)
	return appendAttribute(r, logAttributes, f.key, false, &val)
}

// Str gives the next field's value, a string (ctf.String), as its bytes.
func (b *LogBuilder) Str(v []byte) { b.bytesField(v, anyString) }

// Bytes gives the next field's value, bytes (ctf.Bytes): the trace or
// span id for a field of kind trace_id or span_id.
func (b *LogBuilder) Bytes(v []byte) { b.bytesField(v, anyBytes) }

// bytesField gives the next field's value, a string or bytes (AnyValue
// field valField).
func (b *LogBuilder) bytesField(v []byte, valField int) {
	if f := b.field(); f != nil {
		b.sb.recs = b.appendBytesValue(b.sb.recs, f, valField, v)
	}
}

// appendBytesValue appends the attribute of field f with a string or
// bytes value (AnyValue field valField), or keeps the value for End if
// it is the trace or span id. v must stay valid until End.
func (b *LogBuilder) appendBytesValue(r []byte, f *fieldEnc, valField int, v []byte) []byte {
	switch {
	case f.role <= roleBool:
		return f.appendBytes(r, valField, v)
	case f.role == roleTrace:
		if b.trace == nil && len(v) == 16 {
			b.trace = v
		}
	case b.span == nil && len(v) == 8:
		b.span = v
	}
	return r
}

// End finishes the record Begin started; truncated has bit i set if the
// recorder cut field i.
func (b *LogBuilder) End(truncated uint8) {
	c, sb := b.cur, b.sb
	if c == nil {
		return
	}
	if truncated != 0 {
		sb.recs, b.scratch = appendTruncated(sb.recs, b.scratch, logAttributes, c, truncated)
	}
	if b.trace != nil {
		sb.recs = appendBytesField(sb.recs, logTraceID, b.trace)
		if b.span != nil {
			sb.recs = appendBytesField(sb.recs, logSpanID, b.span)
		}
	}
	if c.shortName.n > 0 {
		r, at := reserve(sb.recs, 9+16)
		r[at] = logObserved<<3 | wireFixed64
		binary.LittleEndian.PutUint64(r[at+1:], uint64(b.observed))
		sb.recs = r[:c.shortName.put(r, at+9)]
	} else {
		sb.recs = append(sb.recs, logObserved<<3|wireFixed64)
		sb.recs = binary.LittleEndian.AppendUint64(sb.recs, uint64(b.observed))
		sb.recs = append(sb.recs, c.nameField...)
	}
	b.sized(sb, b.start)
	// The ids alias the caller's bytes: not kept beyond the record.
	b.cur, b.trace, b.span = nil, nil, nil
}

// sized fills in the size of the record just appended to sb.recs, whose
// size byte is at offset at, moving the record up if its size takes more
// than a byte, and counts it.
func (b *LogBuilder) sized(sb *builderScope, at int) {
	size := len(sb.recs) - at - 1
	if size >= 0x80 {
		// A size of more than one byte: move the record up.
		k := varintLen(uint64(size)) - 1
		sb.recs = append(sb.recs, make([]byte, k)...)
		copy(sb.recs[at+1+k:], sb.recs[at+1:len(sb.recs)-k])
		appendVarint(sb.recs[:at], uint64(size))
	} else {
		sb.recs[at] = byte(size)
	}
	sb.ends = append(sb.ends, int32(len(sb.recs)))
	b.n++
}
