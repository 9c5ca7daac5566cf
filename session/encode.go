package session

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/tracemark/tracemark/marker"
)

// Record layout. Every record is a CTF 1.8 event, byte-aligned and
// little-endian, so the buffers hold finished CTF and a packet is just a
// header plus records:
//
//	uint16 class id | uint64 timestamp (ns) | fields... | [uint8 _truncated]
//
// Fields in schema order: integers and floats in their size, bool as one
// byte, duration as int64 ns, strings NUL-terminated (cut at the cap or at
// an embedded NUL), byte slices as a uint32 length and the bytes (cut at
// the cap). Classes with string or byte fields end with a bitmask of the
// fields that were cut, so truncation is never silent.
const (
	headerSize      = 10
	timestampOffset = 2
)

// layout is what encoding needs to know about a marker's schema, worked
// out once per class so that the per-event loops switch on little.
type layout struct {
	kinds     []marker.Kind
	sizes     []uint8 // encoded size of fixed fields; 0 for strings and bytes
	varFields []uint8 // indexes of string and byte fields
	fixed     int     // header plus fixed-size fields plus trailer
	variable  bool    // has string or byte fields, hence the _truncated trailer
	maxString int
}

func newLayout(m *marker.Info, maxString int) layout {
	l := layout{fixed: headerSize, maxString: maxString}
	for i := range m.NumFields() {
		k := m.Field(i).Kind
		l.kinds = append(l.kinds, k)
		size := uint8(k.Bits() / 8)
		switch k {
		case marker.KindString, marker.KindBytes:
			size = 0
			l.variable = true
			l.varFields = append(l.varFields, uint8(i))
			if k == marker.KindBytes {
				l.fixed += 4
			}
		}
		l.sizes = append(l.sizes, size)
		l.fixed += int(size)
	}
	if l.variable {
		l.fixed++
	}
	return l
}

// sizes holds the encoded lengths of variable fields, computed once by
// measure and used by encode.
type sizes struct {
	n         [marker.MaxFields]int
	truncated uint8
}

// measure returns the record size of e and fills sz.
func (l *layout) measure(e *marker.Event, sz *sizes) int {
	size := l.fixed
	for _, i := range l.varFields {
		v := e.Field(int(i))
		var n int
		if v.Kind() == marker.KindString {
			s := v.Str()
			n = len(s)
			if n > l.maxString {
				n = l.maxString
				sz.truncated |= 1 << i
			}
			if z := indexNUL(s[:n]); z >= 0 {
				n = z // CTF strings end at the first NUL
				sz.truncated |= 1 << i
			}
			size++ // the NUL
		} else {
			n = len(v.Bytes())
			if n > l.maxString {
				n = l.maxString
				sz.truncated |= 1 << i
			}
		}
		sz.n[i] = n
		size += n
	}
	return size
}

// encode writes e into dst, which is exactly measure's size.
func (l *layout) encode(dst []byte, id uint16, ts int64, e *marker.Event, sz *sizes) {
	binary.LittleEndian.PutUint16(dst, id)
	binary.LittleEndian.PutUint64(dst[2:], uint64(ts))
	off := headerSize
	for i, size := range l.sizes {
		v := e.Field(i)
		switch size {
		case 8:
			binary.LittleEndian.PutUint64(dst[off:], v.Bits())
		case 4:
			binary.LittleEndian.PutUint32(dst[off:], uint32(v.Bits()))
		case 2:
			binary.LittleEndian.PutUint16(dst[off:], uint16(v.Bits()))
		case 1:
			dst[off] = byte(v.Bits())
		case 0:
			n := sz.n[i]
			if v.Kind() == marker.KindString {
				copy(dst[off:off+n], v.Str())
				dst[off+n] = 0
				off++
			} else {
				binary.LittleEndian.PutUint32(dst[off:], uint32(n))
				off += 4
				copy(dst[off:off+n], v.Bytes())
			}
			off += n
		}
		off += int(size)
	}
	if l.variable {
		dst[off] = sz.truncated
	}
}

// recordLen returns the length of the record at the start of data, for
// the consumer's per-marker counts, or -1 if it is malformed.
func (l *layout) recordLen(data []byte) int {
	off := headerSize
	for _, k := range l.kinds {
		switch k {
		case marker.KindString:
			z := indexByte(data, off, 0)
			if z < 0 {
				return -1
			}
			off = z + 1
		case marker.KindBytes:
			if off+4 > len(data) {
				return -1
			}
			off += 4 + int(binary.LittleEndian.Uint32(data[off:]))
		default:
			off += k.Bits() / 8
		}
		if off > len(data) {
			return -1
		}
	}
	if l.variable {
		off++
	}
	if off > len(data) {
		return -1
	}
	return off
}

// indexNUL is strings.IndexByte(s, 0), faster for the short strings most
// fields hold: it tests eight bytes at a time for a zero byte without
// a function call.
func indexNUL(s string) int {
	if len(s) > 64 {
		return strings.IndexByte(s, 0)
	}
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64([]byte(s[i : i+8]))
		if (w-0x0101010101010101)&^w&0x8080808080808080 != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if s[i] == 0 {
			return i
		}
	}
	return -1
}

func indexByte(data []byte, from int, c byte) int {
	if from > len(data) {
		return -1
	}
	if i := bytes.IndexByte(data[from:], c); i >= 0 {
		return from + i
	}
	return -1
}
