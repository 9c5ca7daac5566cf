package guest

import (
	"encoding/binary"
	"time"
	"unsafe"
)

// ABI v1 limits and codes, as package module defines them for the host.
const (
	// MaxFieldBytes is the largest string or byte-slice field the host
	// accepts. Fire truncates longer values (strings at a UTF-8 boundary)
	// rather than have the host refuse the event.
	MaxFieldBytes = 4096
	// MaxDocBytes is the largest marker description; Doc truncates.
	MaxDocBytes = 1024
)

// ABI v1 kind codes.
const (
	kindInt8     = 1
	kindInt16    = 2
	kindInt32    = 3
	kindInt64    = 4
	kindUint8    = 5
	kindUint16   = 6
	kindUint32   = 7
	kindUint64   = 8
	kindFloat32  = 9
	kindFloat64  = 10
	kindBool     = 11
	kindString   = 12
	kindBytes    = 13
	kindDuration = 14

	// lenient marks a string field whose invalid UTF-8 the host replaces
	// by U+FFFD instead of refusing the event. The SDK's strings are
	// lenient so that Fire need not check them: in a sandboxed module
	// every loop iteration costs a trip to the host's deadline check.
	lenient = 0x80
)

// Fire encodes a field by the size of its Go type, which the compiler
// knows for each instantiation of a generic Fire, so that the switch over
// sizes is folded away and Fire runs without branches: in a sandboxed
// module, every branch of Go code costs a trip to the host's deadline
// check. A field's Go type is fixed by its constructor: the sizes 1, 2, 4
// and 8 are numbers and bools, sizeString a string, anything else a byte
// slice.
const sizeString = unsafe.Sizeof("")

// The size switch needs string and []byte to differ from every number:
// true on 64-bit platforms and wasm, which is all the SDK supports.
var _ = [1]struct{}{}[sizeString-16]

// Field declares one typed field of a marker, as marker.Field does on the
// host: get it from the constructors (Int64, String, ...), whose type
// parameter makes firing with wrong types a compile error.
type Field[T any] struct {
	name string
	kind uint8 // ABI v1 kind code
}

// Name returns the field's name.
func (f Field[T]) Name() string { return f.name }

// Int8 declares an int8 field.
func Int8(name string) Field[int8] { return Field[int8]{name, kindInt8} }

// Int16 declares an int16 field.
func Int16(name string) Field[int16] { return Field[int16]{name, kindInt16} }

// Int32 declares an int32 field.
func Int32(name string) Field[int32] { return Field[int32]{name, kindInt32} }

// Int64 declares an int64 field.
func Int64(name string) Field[int64] { return Field[int64]{name, kindInt64} }

// Int declares an int field, sent as int64.
func Int(name string) Field[int] { return Field[int]{name, kindInt64} }

// Uint8 declares a uint8 field.
func Uint8(name string) Field[uint8] { return Field[uint8]{name, kindUint8} }

// Uint16 declares a uint16 field.
func Uint16(name string) Field[uint16] { return Field[uint16]{name, kindUint16} }

// Uint32 declares a uint32 field.
func Uint32(name string) Field[uint32] { return Field[uint32]{name, kindUint32} }

// Uint64 declares a uint64 field.
func Uint64(name string) Field[uint64] { return Field[uint64]{name, kindUint64} }

// Uint declares a uint field, sent as uint64.
func Uint(name string) Field[uint] { return Field[uint]{name, kindUint64} }

// Float32 declares a float32 field.
func Float32(name string) Field[float32] { return Field[float32]{name, kindFloat32} }

// Float64 declares a float64 field.
func Float64(name string) Field[float64] { return Field[float64]{name, kindFloat64} }

// Bool declares a bool field.
func Bool(name string) Field[bool] { return Field[bool]{name, kindBool} }

// Duration declares a time.Duration field.
func Duration(name string) Field[time.Duration] {
	return Field[time.Duration]{name, kindDuration}
}

// String declares a string field. Values longer than MaxFieldBytes are
// truncated, and the host replaces invalid UTF-8 (including a character
// cut by the truncation) by U+FFFD, so that it never refuses the event.
func String(name string) Field[string] { return Field[string]{name, kindString | lenient} }

// Bytes declares a byte-slice field. Values longer than MaxFieldBytes are
// truncated.
func Bytes(name string) Field[[]byte] { return Field[[]byte]{name, kindBytes} }

// putString writes a string field at b[off:] and returns the offset after
// it: u32le length, then at most MaxFieldBytes bytes.
func putString(b []byte, off int, s string) int {
	s = s[:min(len(s), MaxFieldBytes)]
	binary.LittleEndian.PutUint32(b[off:], uint32(len(s)))
	return off + 4 + copy(b[off+4:], s)
}

// putBytes writes a byte-slice field at b[off:] and returns the offset
// after it: u32le length, then at most MaxFieldBytes bytes.
func putBytes(b []byte, off int, v []byte) int {
	v = v[:min(len(v), MaxFieldBytes)]
	binary.LittleEndian.PutUint32(b[off:], uint32(len(v)))
	return off + 4 + copy(b[off+4:], v)
}
