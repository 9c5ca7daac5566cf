package marker

import (
	"fmt"
	"strconv"
	"time"
)

// Kind is the type of one marker field, as operators and trace formats see it.
type Kind uint8

// The field kinds. Go's int and uint map to KindInt64 and KindUint64 on 64-bit
// platforms (KindInt32 and KindUint32 elsewhere); time.Duration is its own kind so
// that tools can print it as a duration.
const (
	KindInvalid Kind = iota
	KindInt8
	KindInt16
	KindInt32
	KindInt64
	KindUint8
	KindUint16
	KindUint32
	KindUint64
	KindFloat32
	KindFloat64
	KindBool
	KindString
	KindBytes
	KindDuration
	// KindTraceID and KindSpanID are a 16-byte trace id and an 8-byte span
	// id, such as OpenTelemetry's (see [TraceID] and [SpanID]): fixed-size
	// byte arrays, recorded without allocation.
	KindTraceID
	KindSpanID
)

var kindNames = [...]string{
	KindInvalid: "invalid", KindInt8: "int8", KindInt16: "int16", KindInt32: "int32", KindInt64: "int64",
	KindUint8: "uint8", KindUint16: "uint16", KindUint32: "uint32", KindUint64: "uint64",
	KindFloat32: "float32", KindFloat64: "float64", KindBool: "bool", KindString: "string",
	KindBytes: "bytes", KindDuration: "duration", KindTraceID: "trace_id", KindSpanID: "span_id",
}

// String returns the kind's name, such as "int64" or "string".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind is the inverse of [Kind.String].
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if name == s && Kind(k) != KindInvalid {
			return Kind(k), nil
		}
	}
	return KindInvalid, fmt.Errorf("unknown field kind %q", s)
}

// Signed reports whether k is a signed integer kind (KindDuration included).
func (k Kind) Signed() bool { return k >= KindInt8 && k <= KindInt64 || k == KindDuration }

// Unsigned reports whether k is an unsigned integer kind.
func (k Kind) Unsigned() bool { return k >= KindUint8 && k <= KindUint64 }

// Float reports whether k is a floating-point kind.
func (k Kind) Float() bool { return k == KindFloat32 || k == KindFloat64 }

// Bits returns the size in bits of fixed-size kinds (bool is 8, a trace id
// 128, a span id 64), and 0 for KindString and KindBytes.
func (k Kind) Bits() int {
	switch k {
	case KindInt8, KindUint8, KindBool:
		return 8
	case KindInt16, KindUint16:
		return 16
	case KindInt32, KindUint32, KindFloat32:
		return 32
	case KindInt64, KindUint64, KindFloat64, KindDuration, KindSpanID:
		return 64
	case KindTraceID:
		return 128
	}
	return 0
}

// verb is the kind's conversion in a rendered format string, in the style
// of the kernel's marker formats.
func (k Kind) verb() string {
	switch {
	case k.Unsigned():
		return "%u"
	case k == KindDuration:
		return "%v"
	case k.Signed():
		return "%d"
	case k.Float():
		return "%g"
	case k == KindBool:
		return "%t"
	case k == KindString:
		return "%s"
	case k == KindBytes, k == KindTraceID, k == KindSpanID:
		return "%x"
	}
	return "%?"
}

// FieldInfo describes one field of a marker's schema.
type FieldInfo struct {
	Name string
	Kind Kind
}

// String returns "name kind", for example "status int64".
func (f FieldInfo) String() string { return f.Name + " " + f.Kind.String() }

// Field declares one typed field of a marker. Obtain it from the
// constructors ([Int], [String], [Duration], ...); the type parameter is what
// makes firing with arguments of the wrong type a compile error.
type Field[T any] struct {
	name string
	kind Kind
}

// Info returns the field's name and kind.
func (f Field[T]) Info() FieldInfo { return FieldInfo{f.name, f.kind} }

var (
	intKind  = map[bool]Kind{true: KindInt64, false: KindInt32}[strconv.IntSize == 64]
	uintKind = map[bool]Kind{true: KindUint64, false: KindUint32}[strconv.IntSize == 64]
)

// Int declares a field of Go type int. The field records int at its
// native size, as the program holds it: int64 on 64-bit platforms, int32
// on 32-bit ones (386, arm). Use [Int64] for a schema that is the same on
// every platform.
func Int(name string) Field[int] { return Field[int]{name, intKind} }

// Int8 declares a field of Go type int8.
func Int8(name string) Field[int8] { return Field[int8]{name, KindInt8} }

// Int16 declares a field of Go type int16.
func Int16(name string) Field[int16] { return Field[int16]{name, KindInt16} }

// Int32 declares a field of Go type int32.
func Int32(name string) Field[int32] { return Field[int32]{name, KindInt32} }

// Int64 declares a field of Go type int64.
func Int64(name string) Field[int64] { return Field[int64]{name, KindInt64} }

// Uint declares a field of Go type uint, at its native size as [Int].
func Uint(name string) Field[uint] { return Field[uint]{name, uintKind} }

// Uint8 declares a field of Go type uint8.
func Uint8(name string) Field[uint8] { return Field[uint8]{name, KindUint8} }

// Uint16 declares a field of Go type uint16.
func Uint16(name string) Field[uint16] { return Field[uint16]{name, KindUint16} }

// Uint32 declares a field of Go type uint32.
func Uint32(name string) Field[uint32] { return Field[uint32]{name, KindUint32} }

// Uint64 declares a field of Go type uint64.
func Uint64(name string) Field[uint64] { return Field[uint64]{name, KindUint64} }

// Float32 declares a field of Go type float32.
func Float32(name string) Field[float32] { return Field[float32]{name, KindFloat32} }

// Float64 declares a field of Go type float64.
func Float64(name string) Field[float64] { return Field[float64]{name, KindFloat64} }

// Bool declares a field of Go type bool.
func Bool(name string) Field[bool] { return Field[bool]{name, KindBool} }

// String declares a field of Go type string.
func String(name string) Field[string] { return Field[string]{name, KindString} }

// Bytes declares a field of Go type []byte.
func Bytes(name string) Field[[]byte] { return Field[[]byte]{name, KindBytes} }

// Duration declares a field of Go type time.Duration.
func Duration(name string) Field[time.Duration] { return Field[time.Duration]{name, KindDuration} }
