package otlp

import (
	"math"
	"strconv"
	"sync/atomic"

	"github.com/tracemark/tracemark/ctf"
)

// Scope is an OTLP instrumentation scope: the Go module a marker belongs
// to, with its version.
type Scope struct {
	Name    string
	Version string
}

// Field describes one field of an event class.
type Field struct {
	// Name is the attribute key.
	Name string
	// Kind is the marker kind of the field ("int64", "bool", "duration",
	// "trace_id", ...). It decides the attribute type where the CTF value
	// alone does not: bools are integers in CTF, and trace_id and span_id
	// fields fill the record's trace and span ids instead of an
	// attribute. Empty means: as the value's CTF kind says.
	Kind string
}

// Class describes the events of one marker. A Class is passed by
// pointer to every event of the marker; the exporter remembers things
// about it, so create one per marker and do not change it afterwards. A
// Class may be used by several goroutines at once.
type Class struct {
	// Name is the marker name: the LogRecord's event name, or the span
	// name.
	Name   string
	Fields []Field
	// Scope is the instrumentation scope of the marker's events.
	Scope Scope
	// Span, if set, makes the events spans too (see SpanRule).
	Span *SpanRule
	// StartKeys, if set, says that the events start spans: the exporter
	// remembers them under the values of these fields until an event of
	// a class whose Span.Start names this class ends them.
	StartKeys []string

	prep atomic.Value // *prepared: what its exporter worked out about it
}

// prepared is a class as an exporter prepared it: what every event of
// the class needs to know, worked out once. It does not change once
// stored in Class.prep.
type prepared struct {
	*Class
	owner   *Exporter // the exporter that set scopeID
	scopeID int
	attrs   []attrField // the fields that are attributes
	fields  []fieldEnc  // every field, for Begin's records
	// nameField is the event_name field of its log records, encoded.
	nameField []byte
	shortName shortPiece // the same, if at most 16 bytes
	hasIDs    bool       // some field is a trace_id or span_id
	span      *spanInfo  // when Span or StartKeys is set
}

// attrField is a field sent as an attribute, what every event of its
// class needs to know about it worked out once.
type attrField struct {
	i      int    // index in Fields and in the values
	key    []byte // the key field of its KeyValue, encoded
	isBool bool
}

// prepare works out the class's attributes, once for all its events.
func (c *prepared) prepare() {
	c.attrs, c.hasIDs = nil, false
	c.nameField = appendBytesField(nil, logEventName, c.Name)
	c.shortName = newShortPiece(c.nameField)
	c.fields = make([]fieldEnc, len(c.Fields))
	for i, f := range c.Fields {
		key := appendBytesField(nil, 1, f.Name)
		switch f.Kind {
		case kindTraceID:
			c.fields[i].role = roleTrace
		case kindSpanID:
			c.fields[i].role = roleSpan
		case kindBool:
			c.fields[i].role = roleBool
		}
		c.fields[i].key, c.fields[i].short = key, newShortPiece(key)
		if c.fields[i].role >= roleTrace {
			c.hasIDs = true
			continue
		}
		c.attrs = append(c.attrs, attrField{i: i, key: key, isBool: f.Kind == kindBool})
	}
}

// Field kinds with a meaning of their own.
const (
	kindBool     = "bool"
	kindTraceID  = "trace_id"
	kindSpanID   = "span_id"
	truncatedKey = "tracemark.truncated"
)

// appendAnyValue appends the content of the AnyValue of a field value.
func appendAnyValue(b []byte, kind string, v ctf.Value) []byte {
	return appendValue(b, kind == kindBool, v)
}

// appendValue appends the content of the AnyValue of a field value, a
// bool if isBool.
func appendValue(b []byte, isBool bool, v ctf.Value) []byte {
	switch v.Kind {
	case ctf.Int:
		return anyIntVal(b, v.Int)
	case ctf.Uint:
		if isBool {
			return anyBoolVal(b, v.Uint != 0)
		}
		if v.Uint > math.MaxInt64 {
			// OTLP has no unsigned integers: the few values that do
			// not fit an int64 keep their value as decimal text.
			return anyStr(b, strconv.FormatUint(v.Uint, 10))
		}
		return anyIntVal(b, int64(v.Uint))
	case ctf.Float:
		return anyDoubleVal(b, v.Float)
	case ctf.String:
		return anyStr(b, v.Bytes)
	case ctf.Bytes:
		return anyBytesVal(b, v.Bytes)
	}
	return b
}

// ids picks the trace and span ids out of the fields of kinds trace_id
// and span_id (the first of each with the right length).
func ids(c *prepared, vals []ctf.Value) (trace, span []byte) {
	if !c.hasIDs {
		return nil, nil
	}
	for i, f := range c.Fields {
		if i >= len(vals) {
			break
		}
		switch f.Kind {
		case kindTraceID:
			if trace == nil && len(vals[i].Bytes) == 16 {
				trace = vals[i].Bytes
			}
		case kindSpanID:
			if span == nil && len(vals[i].Bytes) == 8 {
				span = vals[i].Bytes
			}
		}
	}
	return trace, span
}

// anyValueLen returns the size of the AnyValue content that appendValue
// appends, or -1 for a value sent as decimal text.
func anyValueLen(isBool bool, v *ctf.Value) int {
	switch v.Kind {
	case ctf.Int:
		return 1 + varintLen(uint64(v.Int))
	case ctf.Uint:
		if isBool {
			return 2
		}
		if v.Uint > math.MaxInt64 {
			return -1
		}
		return 1 + varintLen(v.Uint)
	case ctf.Float:
		return 9
	case ctf.String, ctf.Bytes:
		return bytesFieldLen(len(v.Bytes))
	}
	return 0
}

// appendAttribute appends a field value as a KeyValue (field number
// field, below 16), its key field already encoded: the sizes are computed
// first, so that the value is appended in place, the common kinds with
// few appends.
func appendAttribute(b []byte, field int, key []byte, isBool bool, v *ctf.Value) []byte {
	switch {
	case v.Kind == ctf.Int:
		return appendIntAttribute(b, field, key, uint64(v.Int))
	case v.Kind == ctf.Uint && !isBool && v.Uint <= math.MaxInt64:
		return appendIntAttribute(b, field, key, v.Uint)
	case v.Kind == ctf.String:
		return appendBytesAttribute(b, field, key, anyString, v.Bytes)
	case v.Kind == ctf.Bytes:
		return appendBytesAttribute(b, field, key, anyBytes, v.Bytes)
	}
	n := anyValueLen(isBool, v)
	if n < 0 {
		av := appendValue(nil, isBool, *v)
		n = len(av)
		b = appendTag(b, field, wireBytes)
		b = appendVarint(b, uint64(len(key)+bytesFieldLen(n)))
		b = append(b, key...)
		return appendBytesField(b, 2, av)
	}
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(key)+bytesFieldLen(n)))
	b = append(b, key...)
	b = appendTag(b, 2, wireBytes)
	b = appendVarint(b, uint64(n))
	return appendValue(b, isBool, *v)
}

// appendIntAttribute appends an integer attribute (its int64 bits x) as
// a KeyValue (field number field, below 16), its key field already
// encoded.
func appendIntAttribute(b []byte, field int, key []byte, x uint64) []byte {
	n := 1 + varintLen(x) // the AnyValue: tag, varint
	b = append(b, byte(field<<3|wireBytes))
	b = appendVarint(b, uint64(len(key)+2+n))
	b = append(b, key...)
	b = append(b, 2<<3|wireBytes, byte(n), anyInt<<3|wireVarint)
	return appendVarint(b, x)
}

// appendBytesAttribute appends a string or bytes attribute (AnyValue
// field valField) as a KeyValue (field number field, below 16), its key field
// already encoded.
func appendBytesAttribute(b []byte, field int, key []byte, valField int, v []byte) []byte {
	n := bytesFieldLen(len(v))
	b = append(b, byte(field<<3|wireBytes))
	b = appendVarint(b, uint64(len(key)+bytesFieldLen(n)))
	b = append(b, key...)
	b = append(b, 2<<3|wireBytes)
	b = appendVarint(b, uint64(n))
	b = append(b, byte(valField<<3|wireBytes))
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// attributesLen returns the size of what appendAttributes appends, or -1
// if it cannot tell at little cost (truncated fields, an unsigned value
// sent as text).
func attributesLen(c *prepared, vals []ctf.Value, truncated uint8) int {
	if truncated != 0 {
		return -1
	}
	size := 0
	for _, a := range c.attrs {
		if a.i >= len(vals) {
			break
		}
		n := anyValueLen(a.isBool, &vals[a.i])
		if n < 0 {
			return -1
		}
		kv := len(a.key) + bytesFieldLen(n)
		size += 1 + varintLen(uint64(kv)) + kv
	}
	return size
}

// appendAttributes appends the fields as KeyValues (field number field),
// and the truncation mask as an array of field names. c must be
// prepared.
func appendAttributes(b, scratch []byte, field int, c *prepared, vals []ctf.Value, truncated uint8) ([]byte, []byte) {
	for _, a := range c.attrs {
		if a.i >= len(vals) {
			break
		}
		b = appendAttribute(b, field, a.key, a.isBool, &vals[a.i])
	}
	if truncated != 0 {
		b, scratch = appendTruncated(b, scratch, field, c, truncated)
	}
	return b, scratch
}

// appendTruncated appends the truncation mask as an attribute (field
// number field) whose value is the array of the names of the fields cut.
func appendTruncated(b, scratch []byte, field int, c *prepared, truncated uint8) ([]byte, []byte) {
	// ArrayValue{values: AnyValue{string_value: name}...}
	var arr []byte
	for i, f := range c.Fields {
		if i < 8 && truncated&(1<<i) != 0 {
			arr = appendBytesField(arr, 1, anyStr(nil, f.Name))
		}
	}
	scratch = appendBytesField(scratch[:0], anyArray, arr)
	return appendKeyValue(b, field, truncatedKey, scratch), scratch
}

// LogRecord fields.
const (
	logTime       = 1
	logAttributes = 6
	logTraceID    = 9
	logSpanID     = 10
	logObserved   = 11
	logEventName  = 12
)

// logRecordLen returns the size of what appendLogRecord appends, or -1 if
// it cannot tell at little cost.
func logRecordLen(c *prepared, vals []ctf.Value, truncated uint8) int {
	n := attributesLen(c, vals, truncated)
	if n < 0 {
		return -1
	}
	n += 9 + 9 + bytesFieldLen(len(c.Name)) // the timestamps, the name
	if trace, span := ids(c, vals); trace != nil {
		n += bytesFieldLen(len(trace))
		if span != nil {
			n += bytesFieldLen(len(span))
		}
	}
	return n
}

// appendLogRecord appends the content of a LogRecord.
func appendLogRecord(b, scratch []byte, c *prepared, timeNS, observedNS int64, vals []ctf.Value, truncated uint8) ([]byte, []byte) {
	b = appendFixed64(b, logTime, uint64(timeNS))
	b, scratch = appendAttributes(b, scratch, logAttributes, c, vals, truncated)
	if trace, span := ids(c, vals); trace != nil {
		b = appendBytesField(b, logTraceID, trace)
		if span != nil {
			b = appendBytesField(b, logSpanID, span)
		}
	}
	b = appendFixed64(b, logObserved, uint64(observedNS))
	b = appendBytesField(b, logEventName, c.Name)
	return b, scratch
}

// Span fields.
const (
	spanTraceID    = 1
	spanSpanID     = 2
	spanParentID   = 4
	spanName       = 5
	spanKind       = 6
	spanStart      = 7
	spanEnd        = 8
	spanAttributes = 9
	spanKindIntern = 1
)

// appendSpan appends the content of a Span.
func appendSpan(b, scratch []byte, s *SpanData) ([]byte, []byte) {
	b = appendBytesField(b, spanTraceID, s.TraceID[:])
	b = appendBytesField(b, spanSpanID, s.SpanID[:])
	if s.ParentSpanID != ([8]byte{}) {
		b = appendBytesField(b, spanParentID, s.ParentSpanID[:])
	}
	b = appendBytesField(b, spanName, s.Name)
	b = appendUintField(b, spanKind, spanKindIntern)
	b = appendFixed64(b, spanStart, uint64(s.StartNS))
	b = appendFixed64(b, spanEnd, uint64(s.EndNS))
	for _, a := range s.Attributes {
		scratch = a.appendValue(scratch[:0])
		b = appendKeyValue(b, spanAttributes, a.Key, scratch)
	}
	return b, scratch
}

// Attribute is a resource or span attribute. Value is a string, bool,
// int, int64, uint64, float64 or []byte; other types are sent as their
// fmt-free string form where possible, else skipped.
type Attribute struct {
	Key   string
	Value any
}

func (a Attribute) appendValue(b []byte) []byte {
	switch v := a.Value.(type) {
	case string:
		return anyStr(b, v)
	case bool:
		return anyBoolVal(b, v)
	case int:
		return anyIntVal(b, int64(v))
	case int64:
		return anyIntVal(b, v)
	case uint64:
		if v > math.MaxInt64 {
			return anyStr(b, strconv.FormatUint(v, 10))
		}
		return anyIntVal(b, int64(v))
	case float64:
		return anyDoubleVal(b, v)
	case []byte:
		return anyBytesVal(b, v)
	case ctf.Value:
		return appendAnyValue(b, "", v)
	}
	return b
}

// encodeResource returns the content of a Resource message.
func encodeResource(attrs []Attribute) []byte {
	var b, scratch []byte
	for _, a := range attrs {
		scratch = a.appendValue(scratch[:0])
		b = appendKeyValue(b, 1, a.Key, scratch)
	}
	return b
}

// encodeScope returns the content of an InstrumentationScope message.
func encodeScope(s Scope) []byte {
	var b []byte
	if s.Name != "" {
		b = appendBytesField(b, 1, s.Name)
	}
	if s.Version != "" {
		b = appendBytesField(b, 2, s.Version)
	}
	return b
}
