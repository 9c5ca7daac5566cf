package marker

import (
	"time"
	"unsafe"

	"github.com/tracemark/tracemark/internal/probeabi"
)

// Event is one firing of a marker, as a probe sees it. It lives on the
// firing goroutine's stack and points at the arguments of Fire where they
// are: a probe must not keep the *Event, nor the strings or byte slices it
// returns, after it returns (copy them with strings.Clone or bytes.Clone).
// This is what lets Fire allocate nothing and copy nothing.
type Event struct {
	// head.Fields[i] points at field i in its Go representation: int8 for
	// KindInt8, string for KindString, []byte for KindBytes, and so on.
	// It comes first: this module's recorders read it in place (see
	// internal/probeabi).
	head probeabi.Event
	info *Info
	ts   int64
}

// Marker returns the marker that fired.
func (e *Event) Marker() *Info { return e.info }

// Time returns the event's monotonic timestamp in nanoseconds (the clock of
// [Now]). It is read from the clock the first time a probe asks, so that
// probes that do not need it do not pay for it; every probe of one firing
// sees the same value.
func (e *Event) Time() int64 {
	if e.ts == 0 {
		e.ts = Now()
	}
	return e.ts
}

// NumFields returns the number of fields.
func (e *Event) NumFields() int { return int(e.info.nfields) }

// Field returns the i-th field value. It panics if i is out of range.
func (e *Event) Field(i int) Value {
	m := e.info
	if uint(i) >= uint(m.nfields) {
		panic("marker: field index out of range")
	}
	return Value{kind: m.kinds[i], p: e.head.Fields[i]}
}

// FieldByName returns the value of the named field.
func (e *Event) FieldByName(name string) (Value, bool) {
	if i := e.info.FieldIndex(name); i >= 0 {
		return e.Field(i), true
	}
	return Value{}, false
}

// Value is one field value of an event. It is a small struct that is
// passed by value and never allocates. Accessors for the wrong kind return
// zero values; check [Value.Kind] first when the schema is not known.
type Value struct {
	kind Kind
	p    unsafe.Pointer // the value in its Go representation, see Event.head
}

// Kind returns the value's kind.
func (v Value) Kind() Kind { return v.kind }

// Int returns a signed integer or duration value (in ns) as int64.
func (v Value) Int() int64 {
	switch v.kind {
	case KindInt8:
		return int64(*(*int8)(v.p))
	case KindInt16:
		return int64(*(*int16)(v.p))
	case KindInt32:
		return int64(*(*int32)(v.p))
	case KindInt64, KindDuration:
		return *(*int64)(v.p)
	}
	return 0
}

// Uint returns an unsigned integer value as uint64.
func (v Value) Uint() uint64 {
	switch v.kind {
	case KindUint8:
		return uint64(*(*uint8)(v.p))
	case KindUint16:
		return uint64(*(*uint16)(v.p))
	case KindUint32:
		return uint64(*(*uint32)(v.p))
	case KindUint64:
		return *(*uint64)(v.p)
	}
	return 0
}

// Float returns a floating-point value as float64.
func (v Value) Float() float64 {
	switch v.kind {
	case KindFloat32:
		return float64(*(*float32)(v.p))
	case KindFloat64:
		return *(*float64)(v.p)
	}
	return 0
}

// Bool returns a bool value.
func (v Value) Bool() bool { return v.kind == KindBool && *(*bool)(v.p) }

// Duration returns a duration value.
func (v Value) Duration() time.Duration {
	if v.kind == KindDuration {
		return *(*time.Duration)(v.p)
	}
	return 0
}

// Str returns a string value. The string is valid only during the probe
// call.
func (v Value) Str() string {
	if v.kind != KindString {
		return ""
	}
	return *(*string)(v.p)
}

// Bytes returns a byte-slice value. The slice is valid only during the
// probe call and must not be modified.
func (v Value) Bytes() []byte {
	if v.kind != KindBytes {
		return nil
	}
	return *(*[]byte)(v.p)
}

// Bits returns the raw bits of a fixed-size value zero-extended to 64 bits:
// two's complement for signed kinds (an int8 of -1 gives 0xff), IEEE 754
// for floats, 0 or 1 for bool; 0 for strings and byte slices. Encoders use
// it to copy a value without a switch per kind.
func (v Value) Bits() uint64 {
	switch kindSize[v.kind] {
	case 8:
		return *(*uint64)(v.p)
	case 4:
		return uint64(*(*uint32)(v.p))
	case 2:
		return uint64(*(*uint16)(v.p))
	case 1:
		return uint64(*(*uint8)(v.p))
	}
	return 0
}

// kindSize is the size in bytes of fixed-size kinds.
var kindSize = [...]uint8{
	KindInt8: 1, KindUint8: 1, KindBool: 1, KindInt16: 2, KindUint16: 2,
	KindInt32: 4, KindUint32: 4, KindFloat32: 4,
	KindInt64: 8, KindUint64: 8, KindFloat64: 8, KindDuration: 8,
	KindString: 0, KindBytes: 0, KindTraceID: 0, KindSpanID: 0,
}

// Value constructors, for firing markers defined at run time with
// [Dynamic.Fire]. Each allocates a little; the typed Fire methods do not
// use them.

// IntValue returns a signed value of kind k (a signed kind or
// KindDuration); x is truncated to the kind's size.
func IntValue(k Kind, x int64) Value {
	switch k {
	case KindInt8:
		v := int8(x)
		return Value{k, unsafe.Pointer(&v)}
	case KindInt16:
		v := int16(x)
		return Value{k, unsafe.Pointer(&v)}
	case KindInt32:
		v := int32(x)
		return Value{k, unsafe.Pointer(&v)}
	case KindInt64, KindDuration:
		return Value{k, unsafe.Pointer(&x)}
	}
	return Value{}
}

// UintValue returns an unsigned value of kind k; x is truncated to the
// kind's size.
func UintValue(k Kind, x uint64) Value {
	switch k {
	case KindUint8:
		v := uint8(x)
		return Value{k, unsafe.Pointer(&v)}
	case KindUint16:
		v := uint16(x)
		return Value{k, unsafe.Pointer(&v)}
	case KindUint32:
		v := uint32(x)
		return Value{k, unsafe.Pointer(&v)}
	case KindUint64:
		return Value{k, unsafe.Pointer(&x)}
	}
	return Value{}
}

// Float32Value returns a float32 value.
func Float32Value(x float32) Value { return Value{KindFloat32, unsafe.Pointer(&x)} }

// Float64Value returns a float64 value.
func Float64Value(x float64) Value { return Value{KindFloat64, unsafe.Pointer(&x)} }

// BoolValue returns a bool value.
func BoolValue(x bool) Value { return Value{KindBool, unsafe.Pointer(&x)} }

// StringValue returns a string value.
func StringValue(x string) Value { return Value{KindString, unsafe.Pointer(&x)} }

// BytesValue returns a byte-slice value.
func BytesValue(x []byte) Value { return Value{KindBytes, unsafe.Pointer(&x)} }
