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
	key  []byte // the key field of its KeyValue, encoded
	role uint8
}

// Begin starts encoding an event of class cl into b field by field, for a
// caller that reads the values out of its own format (the tracemark CLI
// reads them from the CTF records it receives) and would otherwise build a
// []ctf.Value for Add: give the fields in the order of cl.Fields with
// Int, Uint, Float, Str and Bytes (as their CTF kinds say), then call End.
// The record is as Add encodes it from the same values, timestamp timeNS
// and observed timestamp observed. Byte slices must stay valid until End;
// fields not given before End are left out, as Add leaves out missing
// values. A record not ended is discarded by the next Begin, Add or
// Commit.
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
	sb.recs = append(sb.recs, 2<<3|wireBytes, 0, logTime<<3|wireFixed64)
	b.start = len(sb.recs) - 2
	sb.recs = binary.LittleEndian.AppendUint64(sb.recs, uint64(timeNS))
	b.cur, b.sb, b.fi, b.observed = c, sb, 0, observed
	if b.trace != nil || b.span != nil {
		b.trace, b.span = nil, nil
	}
	return true
}

// abandon discards the record Begin started and End did not finish.
func (b *LogBuilder) abandon() {
	if b.cur != nil {
		b.sb.recs = b.sb.recs[:b.start-1]
		b.cur, b.sb = nil, nil
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
		b.sb.recs = appendIntAttribute(b.sb.recs, logAttributes, f.key, uint64(v))
	}
}

// Uint gives the next field's value, an unsigned integer (ctf.Uint): a
// bool for a field of kind bool.
func (b *LogBuilder) Uint(v uint64) {
	f := b.field()
	if f == nil || f.role > roleBool {
		return
	}
	if f.role == roleAttr && v <= math.MaxInt64 {
		b.sb.recs = appendIntAttribute(b.sb.recs, logAttributes, f.key, v)
		return
	}
	val := ctf.UintValue(v)
	b.sb.recs = appendAttribute(b.sb.recs, logAttributes, f.key, f.role == roleBool, &val)
}

// Float gives the next field's value, a floating-point number (ctf.Float).
func (b *LogBuilder) Float(v float64) {
	if f := b.field(); f != nil && f.role <= roleBool {
		val := ctf.FloatValue(v)
		b.sb.recs = appendAttribute(b.sb.recs, logAttributes, f.key, false, &val)
	}
}

// Str gives the next field's value, a string (ctf.String), as its bytes.
func (b *LogBuilder) Str(v []byte) { b.bytesField(v, anyString) }

// Bytes gives the next field's value, bytes (ctf.Bytes): the trace or
// span id for a field of kind trace_id or span_id.
func (b *LogBuilder) Bytes(v []byte) { b.bytesField(v, anyBytes) }

// bytesField gives the next field's value, a string or bytes (AnyValue
// field valField).
func (b *LogBuilder) bytesField(v []byte, valField int) {
	f := b.field()
	switch {
	case f == nil:
	case f.role <= roleBool:
		b.sb.recs = appendBytesAttribute(b.sb.recs, logAttributes, f.key, valField, v)
	case f.role == roleTrace:
		if b.trace == nil && len(v) == 16 {
			b.trace = v
		}
	case b.span == nil && len(v) == 8:
		b.span = v
	}
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
	sb.recs = append(sb.recs, logObserved<<3|wireFixed64)
	sb.recs = binary.LittleEndian.AppendUint64(sb.recs, uint64(b.observed))
	sb.recs = append(sb.recs, c.nameField...)
	size := len(sb.recs) - b.start - 1
	if size >= 0x80 {
		// A size of more than one byte: move the record up.
		k := varintLen(uint64(size)) - 1
		sb.recs = append(sb.recs, make([]byte, k)...)
		copy(sb.recs[b.start+1+k:], sb.recs[b.start+1:len(sb.recs)-k])
		appendVarint(sb.recs[:b.start], uint64(size))
	} else {
		sb.recs[b.start] = byte(size)
	}
	sb.ends = append(sb.ends, int32(len(sb.recs)))
	b.n++
	b.cur = nil
}
