package ctf

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// EventHeaderSize is the size in bytes of an event record header: a uint16
// class id followed by a uint64 timestamp (at byte offset 2).
const EventHeaderSize = 10

// AppendEventHeader appends an event record header (class id and timestamp
// in clock cycles) to b.
func AppendEventHeader(b []byte, id uint16, ts uint64) []byte {
	b = binary.LittleEndian.AppendUint16(b, id)
	return binary.LittleEndian.AppendUint64(b, ts)
}

// AppendUint appends v as an unsigned integer of the given width (8, 16, 32
// or 64 bits; other widths are treated as 64). Higher bits are dropped.
func AppendUint(b []byte, bits int, v uint64) []byte {
	switch bits {
	case 8:
		return append(b, byte(v))
	case 16:
		return binary.LittleEndian.AppendUint16(b, uint16(v))
	case 32:
		return binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return binary.LittleEndian.AppendUint64(b, v)
}

// AppendInt appends v as a two's complement signed integer of the given
// width (8, 16, 32 or 64 bits). Higher bits are dropped.
func AppendInt(b []byte, bits int, v int64) []byte {
	return AppendUint(b, bits, uint64(v))
}

// AppendFloat32 appends v as an IEEE 754 binary32 value.
func AppendFloat32(b []byte, v float32) []byte {
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
}

// AppendFloat64 appends v as an IEEE 754 binary64 value.
func AppendFloat64(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// AppendString appends s and a terminating NUL byte. A string field cannot
// contain NUL, so s is cut at its first NUL byte, if any.
func AppendString(b []byte, s string) []byte {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	b = append(b, s...)
	return append(b, 0)
}

// AppendBytes appends a bytes field: the uint32 length of p, then p.
// p must be shorter than 4 GiB.
func AppendBytes(b []byte, p []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...)
}

// AppendRecord appends a complete event record of class ec: header, the
// field values (one per field, of the field's kind) and, if the record has
// a truncation trailer, the truncated bitmask. A class with a truncated
// twin gets the trailer, and the id TruncatedID, only when truncated is
// not 0.
//
// It is a convenience for tests and tools; a recorder normally encodes
// records itself with the Append functions.
func AppendRecord(b []byte, ec *EventClass, ts uint64, vals []Value, truncated uint8) ([]byte, error) {
	if len(vals) != len(ec.Fields) {
		return b, fmt.Errorf("event class %d (%q): %d values for %d fields", ec.ID, ec.Name, len(vals), len(ec.Fields))
	}
	id := ec.ID
	if ec.Truncation && truncated != 0 {
		id = ec.truncatedID()
	}
	b = AppendEventHeader(b, id, ts)
	for i, f := range ec.Fields {
		v := vals[i]
		if v.Kind != f.Type.Kind {
			return b, fmt.Errorf("event class %d (%q) field %q: %s value for %s field", ec.ID, ec.Name, f.Name, v.Kind, f.Type)
		}
		switch f.Type.Kind {
		case Int:
			b = AppendInt(b, f.Type.Bits, v.Int)
		case Uint:
			b = AppendUint(b, f.Type.Bits, v.Uint)
		case Float:
			if f.Type.Bits == 32 {
				b = AppendFloat32(b, float32(v.Float))
			} else {
				b = AppendFloat64(b, v.Float)
			}
		case String:
			b = AppendString(b, string(v.Bytes))
		case Bytes:
			if f.Type.Bits > 0 {
				if len(v.Bytes) != f.Type.Bits/8 {
					return b, fmt.Errorf("event class %d (%q) field %q: %d bytes for a %s field", ec.ID, ec.Name, f.Name, len(v.Bytes), f.Type)
				}
				b = append(b, v.Bytes...)
				break
			}
			if uint64(len(v.Bytes)) > math.MaxUint32 {
				return b, fmt.Errorf("event class %d (%q) field %q: %d bytes do not fit a uint32 length", ec.ID, ec.Name, f.Name, len(v.Bytes))
			}
			b = AppendBytes(b, v.Bytes)
		default:
			return b, fmt.Errorf("event class %d (%q) field %q: invalid type %s", ec.ID, ec.Name, f.Name, f.Type)
		}
	}
	if ec.HasTrailer(id) {
		b = append(b, truncated)
	}
	return b, nil
}
