package ctf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/tracemark/tracemark/internal/cstring"
)

// classTable maps event ids to classes. It is immutable once published.
type classTable struct {
	byID []*EventClass
	ctx  []Field // the stream event context
}

// withContext sets the stream event context of a table it owns.
func (t *classTable) withContext(ctx []Field) *classTable {
	t.ctx = ctx
	return t
}

func (t *classTable) get(id uint16) *EventClass {
	if t == nil || int(id) >= len(t.byID) {
		return nil
	}
	return t.byID[id]
}

// with returns a copy of t with the classes added.
func (t *classTable) with(ecs []*EventClass) *classTable {
	n := 0
	if t != nil {
		n = len(t.byID)
	}
	for _, ec := range ecs {
		n = max(n, int(ec.ID)+1, int(ec.truncatedID())+1)
	}
	nt := &classTable{byID: make([]*EventClass, n)}
	if t != nil {
		copy(nt.byID, t.byID)
		nt.ctx = t.ctx
	}
	for _, ec := range ecs {
		if old := nt.get(ec.ID); old != nil && old.Twin() && nt.byID[old.truncatedID()] == old {
			nt.byID[old.truncatedID()] = nil // the replaced class's twin id
		}
		nt.byID[ec.ID] = ec
		if ec.Truncation {
			nt.byID[ec.truncatedID()] = ec // a truncated twin's id
		}
	}
	return nt
}

// decodeError is a problem at a byte offset of a decoded buffer.
type decodeError struct {
	off int
	msg string
}

func (e *decodeError) Error() string { return e.msg }

func derr(off int, format string, args ...any) *decodeError {
	return &decodeError{off: off, msg: fmt.Sprintf(format, args...)}
}

// decodeRecord decodes the event record starting at b[pos:]; b ends where
// the packet content ends. It sets ev.Class, ev.Cycles and ev.Truncated and,
// if fill is set, ev.Fields (whose byte slices alias b). It returns the
// offset of the next record.
func decodeRecord(b []byte, pos int, tab *classTable, ev *Event, fill bool) (int, *decodeError) {
	if len(b)-pos < EventHeaderSize {
		return pos, derr(pos, "truncated event header: %d bytes left in packet, need %d", len(b)-pos, EventHeaderSize)
	}
	id := binary.LittleEndian.Uint16(b[pos:])
	ec := tab.get(id)
	if ec == nil {
		return pos, derr(pos, "unknown event class id %d", id)
	}
	ev.Class = ec
	ev.Cycles = binary.LittleEndian.Uint64(b[pos+2:])
	ev.Truncated = 0
	p := pos + EventHeaderSize
	if fill {
		ev.Fields = ev.Fields[:0]
		ev.Context = ev.Context[:0]
		ev.ContextFields = tab.ctx
	}
	if len(tab.ctx) > 0 {
		var derr *decodeError
		if p, derr = decodeContext(b, p, tab.ctx, ev, fill); derr != nil {
			return pos, derr
		}
	}
	var fields *[]Value
	if fill {
		fields = &ev.Fields
	}
	p, trunc, derr := decodeFields(b, p, ec, id, fields)
	if derr != nil {
		return pos, derr
	}
	ev.Truncated = trunc
	return p, nil
}

// decodeFields decodes the payload fields of a record of class ec at b[p:]
// and its truncation trailer (if id, the record's, is ec's truncated
// twin), and returns the offset after them and the trailer (0 without
// one). If fields is not nil, it sets *fields to their values (whose byte
// slices alias b), reusing its array; otherwise it only finds where they
// end (skipFields).
func decodeFields(b []byte, p int, ec *EventClass, id uint16, fields *[]Value) (int, uint8, *decodeError) {
	if fields == nil {
		return skipFields(b, p, ec, 0, id)
	}
	// The values are written in place, field by field: a Value built
	// first and then appended is 56 bytes copied through the stack.
	vals := *fields
	if nf := len(ec.Fields); cap(vals) < nf {
		vals = make([]Value, nf)
	} else {
		vals = vals[:nf]
	}
	for i := range ec.Fields {
		ft := &ec.Fields[i].Type
		v := &vals[i]
		switch ft.Kind {
		case Int, Uint, Float:
			n := int(uint(ft.Bits) >> 3)
			if len(b)-p < n {
				return p, 0, fieldError(errShortField, b, p, ec, i)
			}
			var u uint64
			switch n {
			case 1:
				u = uint64(b[p])
			case 2:
				u = uint64(binary.LittleEndian.Uint16(b[p:]))
			case 4:
				u = uint64(binary.LittleEndian.Uint32(b[p:]))
			default:
				u = binary.LittleEndian.Uint64(b[p:])
			}
			p += n
			v.Kind = ft.Kind
			v.Int, v.Uint, v.Float = 0, 0, 0
			switch ft.Kind {
			case Uint:
				v.Uint = u
			case Int:
				shift := 64 - uint(ft.Bits)
				v.Int = int64(u<<shift) >> shift
			default:
				if n == 4 {
					v.Float = float64(math.Float32frombits(uint32(u)))
				} else {
					v.Float = math.Float64frombits(u)
				}
			}
			v.Bytes = nil
		case String:
			j := cstring.Index(b[p:])
			if j < 0 {
				return p, 0, fieldError(errUnterminated, b, p, ec, i)
			}
			v.Kind = String
			v.Int, v.Uint, v.Float = 0, 0, 0
			v.Bytes = b[p : p+j : p+j]
			p += j + 1
		case Bytes:
			n := int(uint(ft.Bits) >> 3) // a fixed-size array, or 0
			if n == 0 {
				if len(b)-p < 4 {
					return p, 0, fieldError(errShortLength, b, p, ec, i)
				}
				l := binary.LittleEndian.Uint32(b[p:])
				if uint64(l) > uint64(len(b)-p-4) {
					return p, 0, fieldError(errLongSequence, b, p, ec, i)
				}
				p += 4
				n = int(l)
			} else if len(b)-p < n {
				return p, 0, fieldError(errShortField, b, p, ec, i)
			}
			v.Kind = Bytes
			v.Int, v.Uint, v.Float = 0, 0, 0
			v.Bytes = b[p : p+n : p+n]
			p += n
		default:
			return p, 0, fieldError(errInvalidType, b, p, ec, i)
		}
	}
	*fields = vals
	return trailer(b, p, ec, id)
}

// skipFields is decodeFields without values: it only finds where the
// fields end, as fast as it can, since a drain walks every record so.
// Errors are worded out of line (fieldError), which keeps its frame small.
func skipFields(b []byte, p int, ec *EventClass, from int, id uint16) (int, uint8, *decodeError) {
	for i := from; i < len(ec.Fields); i++ {
		ft := &ec.Fields[i].Type
		switch ft.Kind {
		case String:
			j := cstring.Index(b[p:])
			if j < 0 {
				return p, 0, fieldError(errUnterminated, b, p, ec, i)
			}
			p += j + 1
		case Bytes:
			if ft.Bits == 0 {
				if len(b)-p < 4 {
					return p, 0, fieldError(errShortLength, b, p, ec, i)
				}
				l := binary.LittleEndian.Uint32(b[p:])
				if uint64(l) > uint64(len(b)-p-4) {
					return p, 0, fieldError(errLongSequence, b, p, ec, i)
				}
				p += 4 + int(l)
				continue
			}
			fallthrough
		case Int, Uint, Float:
			n := int(uint(ft.Bits) >> 3)
			if len(b)-p < n {
				return p, 0, fieldError(errShortField, b, p, ec, i)
			}
			p += n
		default:
			return p, 0, fieldError(errInvalidType, b, p, ec, i)
		}
	}
	return trailer(b, p, ec, id)
}

// trailer reads the truncation trailer of a record of class ec with id,
// if it has one (EventClass.HasTrailer), at b[p:].
func trailer(b []byte, p int, ec *EventClass, id uint16) (int, uint8, *decodeError) {
	if !ec.HasTrailer(id) {
		return p, 0, nil
	}
	if len(b)-p < 1 {
		return p, 0, fieldError(errNoTrailer, b, p, ec, len(ec.Fields))
	}
	return p + 1, b[p], nil
}

// What decodeFields found wrong.
const (
	errShortField = iota
	errUnterminated
	errShortLength
	errLongSequence
	errInvalidType
	errNoTrailer
)

// fieldError words what decodeFields found wrong with field i of ec at
// b[p:] (the trailer if i is the number of fields).
//
//go:noinline
func fieldError(what int, b []byte, p int, ec *EventClass, i int) *decodeError {
	if what == errNoTrailer {
		return derr(p, "event %q: missing _truncated trailer at the end of the packet", ec.Name)
	}
	f := &ec.Fields[i]
	switch what {
	case errShortField:
		return derr(p, "event %q field %q: truncated %s: %d bytes left in packet", ec.Name, f.Name, f.Type, len(b)-p)
	case errUnterminated:
		return derr(p, "event %q field %q: string not terminated before the end of the packet content", ec.Name, f.Name)
	case errShortLength:
		return derr(p, "event %q field %q: truncated sequence length: %d bytes left in packet", ec.Name, f.Name, len(b)-p)
	case errLongSequence:
		return derr(p, "event %q field %q: sequence length %d exceeds the %d bytes left in the packet",
			ec.Name, f.Name, binary.LittleEndian.Uint32(b[p:]), len(b)-p-4)
	}
	return derr(p, "event %q field %q: invalid type", ec.Name, f.Name)
}

// decodeContext decodes the stream event context at b[p:]: integers and
// strings only (validateContext refuses other types).
func decodeContext(b []byte, p int, ctx []Field, ev *Event, fill bool) (int, *decodeError) {
	for i := range ctx {
		ft := ctx[i].Type
		var v Value
		if ft.Kind == String {
			j := bytes.IndexByte(b[p:], 0)
			if j < 0 {
				return p, derr(p, "event context field %q: string not terminated before the end of the packet content", ctx[i].Name)
			}
			v = Value{Kind: String, Bytes: b[p : p+j : p+j]}
			p += j + 1
		} else {
			n := ft.Bits / 8
			if len(b)-p < n {
				return p, derr(p, "event context field %q: truncated %s: %d bytes left in packet", ctx[i].Name, ft, len(b)-p)
			}
			var u uint64
			for k := n - 1; k >= 0; k-- {
				u = u<<8 | uint64(b[p+k])
			}
			p += n
			v.Kind = ft.Kind
			if ft.Kind == Int {
				shift := 64 - uint(ft.Bits)
				v.Int = int64(u<<shift) >> shift
			} else {
				v.Uint = u
			}
		}
		if fill {
			ev.Context = append(ev.Context, v)
		}
	}
	return p, nil
}
