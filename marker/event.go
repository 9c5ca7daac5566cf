package marker

import (
	"strconv"
	"time"
	"unsafe"

	"github.com/tracemark/tracemark/internal/probeabi"
)

// Event is one firing of a marker, as a probe sees it. It lives on the
// firing goroutine's stack and points at the arguments of Fire where they
// are: a probe must not keep the *Event, the Values read from it, nor the
// strings or byte slices they return, after it returns. This is what lets
// Fire allocate nothing and copy nothing. A probe that needs the event
// later keeps a copy made by [Event.Clone].
//
// Built with the tracemark_debug build tag, the Event is instead allocated
// on the heap and marked done when its probes return; any accessor of it,
// or of a Value read from it, then panics, naming the marker. Use the tag
// in tests to find probes that keep events.
type Event struct {
	// head.Fields[i] points at field i in its Go representation: int8 for
	// KindInt8, string for KindString, []byte for KindBytes, and so on.
	// It comes first: this module's recorders read it in place (see
	// internal/probeabi).
	head probeabi.Event
	dbg  eventDebug // empty without tracemark_debug, see debug_on.go
	info *Info
	ts   int64
}

// Marker returns the marker that fired.
func (e *Event) Marker() *Info {
	e.check()
	return e.info
}

// Time returns the event's monotonic timestamp in nanoseconds (the clock of
// [Now]). It is read from the clock the first time a probe asks, so that
// probes that do not need it do not pay for it; every probe of one firing
// sees the same value.
func (e *Event) Time() int64 {
	e.check()
	if e.ts == 0 {
		e.ts = Now()
	}
	return e.ts
}

// NumFields returns the number of fields.
func (e *Event) NumFields() int {
	e.check()
	return int(e.info.nfields)
}

// Field returns the i-th field value. It panics if i is out of range.
func (e *Event) Field(i int) Value {
	m := e.info // ref checks e (tracemark_debug), whose Event is on the heap
	if uint(i) >= uint(m.nfields) {
		panic("marker: field index out of range")
	}
	return Value{kind: m.kinds[i], idx: uint8(i), p: e.head.Fields[i], from: e.ref(m)}
}

// FieldByName returns the value of the named field. If there is none, it
// returns the zero Value (of KindInvalid) and false.
func (e *Event) FieldByName(name string) (Value, bool) {
	if i := e.info.FieldIndex(name); i >= 0 {
		return e.Field(i), true
	}
	return Value{}, false
}

// Clone returns a copy of the event that owns its values: numbers are
// copied out of the firing goroutine's stack, and the bytes of strings and
// byte slices into memory of the copy's own. The copy may be kept, sent to
// other goroutines and read from several at once (it must not be read
// while one of its byte slices is being written), and so may the Values,
// strings and byte slices read from it. Its Time is the event's (Clone
// reads the clock if no probe did yet).
//
// Clone allocates one object of about 100 bytes plus 48 per field, and
// one more holding the bytes of all string and byte-slice fields if they
// are not empty. That is some 20 times the cost of an enabled Fire with a
// no-op probe (see BenchmarkClone), most of it the allocation and its
// share of garbage collection, so a probe that keeps only a field or two
// is better off copying just those (with strings.Clone or bytes.Clone).
func (e *Event) Clone() *Event {
	e.check()
	m := e.info
	n := int(m.nfields)
	size := 0
	for i := range n {
		switch m.kinds[i] {
		case KindString:
			size += len(*(*string)(e.head.Fields[i]))
		case KindBytes:
			size += len(*(*[]byte)(e.head.Fields[i]))
		}
	}
	var buf []byte
	if size > 0 {
		buf = make([]byte, size)
	}
	c, vals := newOwned(n)
	c.info = m
	c.ts = e.Time()
	for i := range n {
		src, dst := e.head.Fields[i], &vals[i]
		switch k := m.kinds[i]; k {
		case KindString:
			if s := *(*string)(src); s != "" {
				l := copy(buf, s)
				dst.s = unsafe.String(&buf[0], l)
				buf = buf[l:]
			}
			c.head.Fields[i] = unsafe.Pointer(&dst.s)
		case KindBytes:
			if b := *(*[]byte)(src); len(b) > 0 {
				l := copy(buf, b)
				dst.b = buf[:l:l]
				buf = buf[l:]
			} else if b != nil {
				dst.b = []byte{}
			}
			c.head.Fields[i] = unsafe.Pointer(&dst.b)
		default:
			switch kindSize[k] {
			case 8:
				*(*uint64)(unsafe.Pointer(&dst.n)) = *(*uint64)(src)
			case 4:
				*(*uint32)(unsafe.Pointer(&dst.n)) = *(*uint32)(src)
			case 2:
				*(*uint16)(unsafe.Pointer(&dst.n)) = *(*uint16)(src)
			case 1:
				*(*uint8)(unsafe.Pointer(&dst.n)) = *(*uint8)(src)
			}
			c.head.Fields[i] = unsafe.Pointer(&dst.n)
		}
	}
	return c
}

// ownedEvent is what Clone allocates: an Event and the values its field
// pointers point at, V being an array of one ownedValue per field.
type ownedEvent[V any] struct {
	ev   Event
	vals V
}

// ownedValue holds one field value of a cloned Event, by kind: s for
// strings, b for byte slices, and the first bytes of n, in the field's Go
// representation, for the fixed-size kinds.
type ownedValue struct {
	s string
	b []byte
	n uint64
}

// newOwned allocates, in one object, an Event and the values of its n
// fields: an array sized for the schema keeps a small event small.
func newOwned(n int) (*Event, []ownedValue) {
	switch n {
	case 0:
		return new(Event), nil
	case 1:
		o := new(ownedEvent[[1]ownedValue])
		return &o.ev, o.vals[:]
	case 2:
		o := new(ownedEvent[[2]ownedValue])
		return &o.ev, o.vals[:]
	case 3:
		o := new(ownedEvent[[3]ownedValue])
		return &o.ev, o.vals[:]
	case 4:
		o := new(ownedEvent[[4]ownedValue])
		return &o.ev, o.vals[:]
	case 5:
		o := new(ownedEvent[[5]ownedValue])
		return &o.ev, o.vals[:]
	case 6:
		o := new(ownedEvent[[6]ownedValue])
		return &o.ev, o.vals[:]
	case 7:
		o := new(ownedEvent[[7]ownedValue])
		return &o.ev, o.vals[:]
	}
	o := new(ownedEvent[[MaxFields]ownedValue])
	return &o.ev, o.vals[:]
}

// Value is one field value of an event. It is a small struct that is
// passed by value and never allocates.
//
// An accessor of the wrong kind panics, as those of log/slog's Value do,
// with a message naming the kinds, the field and the marker: check
// [Value.Kind] first when the schema is not known.
type Value struct {
	// Four fields at most, so that the compiler keeps a Value in
	// registers.
	kind Kind
	idx  uint8          // the field's index, if the value was read from an Event
	p    unsafe.Pointer // the value in its Go representation, see Event.head
	from eventRef       // the Event it was read from, see debug_off.go
}

// Kind returns the value's kind.
func (v Value) Kind() Kind {
	v.check()
	return v.kind
}

// Int returns a signed integer or duration value (in ns) as int64. It
// panics if the kind is neither.
func (v Value) Int() int64 {
	v.check()
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
	panic(&kindError{v.kind, v.idx, v.from.marker(), accInt})
}

// Uint returns an unsigned integer value as uint64. It panics if the kind
// is not an unsigned integer kind.
func (v Value) Uint() uint64 {
	v.check()
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
	panic(&kindError{v.kind, v.idx, v.from.marker(), accUint})
}

// Float returns a floating-point value as float64. It panics if the kind
// is neither KindFloat32 nor KindFloat64.
func (v Value) Float() float64 {
	v.check()
	switch v.kind {
	case KindFloat32:
		return float64(*(*float32)(v.p))
	case KindFloat64:
		return *(*float64)(v.p)
	}
	panic(&kindError{v.kind, v.idx, v.from.marker(), accFloat})
}

// Bool returns a bool value. It panics if the kind is not KindBool.
func (v Value) Bool() bool {
	v.check()
	if v.kind != KindBool {
		panic(&kindError{v.kind, v.idx, v.from.marker(), accBool})
	}
	return *(*bool)(v.p)
}

// Duration returns a duration value. It panics if the kind is not
// KindDuration.
func (v Value) Duration() time.Duration {
	v.check()
	if v.kind != KindDuration {
		panic(&kindError{v.kind, v.idx, v.from.marker(), accDuration})
	}
	return *(*time.Duration)(v.p)
}

// Str returns a string value. The string is valid only during the probe
// call, unless the value was read from a copy made by [Event.Clone]. It
// panics if the kind is not KindString.
func (v Value) Str() string {
	v.check()
	if v.kind != KindString {
		panic(&kindError{v.kind, v.idx, v.from.marker(), accStr})
	}
	return *(*string)(v.p)
}

// Bytes returns a byte-slice value. The slice is valid only during the
// probe call and must not be modified, unless the value was read from a
// copy made by [Event.Clone]. It panics if the kind is not KindBytes.
func (v Value) Bytes() []byte {
	v.check()
	if v.kind != KindBytes {
		panic(&kindError{v.kind, v.idx, v.from.marker(), accBytes})
	}
	return *(*[]byte)(v.p)
}

// accessor names a Value accessor, for kindError.
type accessor uint8

const (
	accInt accessor = iota
	accUint
	accFloat
	accBool
	accDuration
	accStr
	accBytes
)

// accessorNames and accessorKinds are the accessors' names and the kinds
// they accept, as kindError says them.
var (
	accessorNames = [...]string{accInt: "Int", accUint: "Uint", accFloat: "Float", accBool: "Bool",
		accDuration: "Duration", accStr: "Str", accBytes: "Bytes"}
	accessorKinds = [...]string{accInt: "a signed integer or duration", accUint: "an unsigned integer",
		accFloat: "float32 or float64", accBool: "bool", accDuration: "duration", accStr: "string", accBytes: "bytes"}
)

// kindError is the panic value of a Value accessor of the wrong kind. The
// accessors build it with a composite literal rather than a call so that
// they stay small enough to inline; the message is made only if asked.
type kindError struct {
	kind Kind
	idx  uint8 // the field's index in info, if info is not nil
	info *Info // the Value's marker, or nil
	acc  accessor
}

func (err *kindError) Error() string {
	where := "Value." + accessorNames[err.acc]
	if m := err.info; m != nil {
		where += " on field " + strconv.Quote(m.def.fields[err.idx].Name) + " of " + m.Name()
	} else if err.kind == KindInvalid {
		where += " on the zero Value, which FieldByName returns for a missing field"
	}
	return "marker: Value kind is " + err.kind.String() + ", not " + accessorKinds[err.acc] + " (" + where + ")"
}

// Bits returns the raw bits of a fixed-size value zero-extended to 64 bits:
// two's complement for signed kinds (an int8 of -1 gives 0xff), IEEE 754
// for floats, 0 or 1 for bool; 0 for strings and byte slices. Encoders use
// it to copy a value without a switch per kind.
func (v Value) Bits() uint64 {
	v.check()
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
		return Value{kind: k, p: unsafe.Pointer(&v)}
	case KindInt16:
		v := int16(x)
		return Value{kind: k, p: unsafe.Pointer(&v)}
	case KindInt32:
		v := int32(x)
		return Value{kind: k, p: unsafe.Pointer(&v)}
	case KindInt64, KindDuration:
		return Value{kind: k, p: unsafe.Pointer(&x)}
	}
	return Value{}
}

// UintValue returns an unsigned value of kind k; x is truncated to the
// kind's size.
func UintValue(k Kind, x uint64) Value {
	switch k {
	case KindUint8:
		v := uint8(x)
		return Value{kind: k, p: unsafe.Pointer(&v)}
	case KindUint16:
		v := uint16(x)
		return Value{kind: k, p: unsafe.Pointer(&v)}
	case KindUint32:
		v := uint32(x)
		return Value{kind: k, p: unsafe.Pointer(&v)}
	case KindUint64:
		return Value{kind: k, p: unsafe.Pointer(&x)}
	}
	return Value{}
}

// Float32Value returns a float32 value.
func Float32Value(x float32) Value { return Value{kind: KindFloat32, p: unsafe.Pointer(&x)} }

// Float64Value returns a float64 value.
func Float64Value(x float64) Value { return Value{kind: KindFloat64, p: unsafe.Pointer(&x)} }

// BoolValue returns a bool value.
func BoolValue(x bool) Value { return Value{kind: KindBool, p: unsafe.Pointer(&x)} }

// StringValue returns a string value.
func StringValue(x string) Value { return Value{kind: KindString, p: unsafe.Pointer(&x)} }

// BytesValue returns a byte-slice value.
func BytesValue(x []byte) Value { return Value{kind: KindBytes, p: unsafe.Pointer(&x)} }
