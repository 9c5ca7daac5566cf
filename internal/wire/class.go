package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tracemark/tracemark/ctf"
)

// ClassFromCTF describes a CTF event class on the wire. kinds holds the
// marker kind of each field (may be nil). A truncated twin's id must not
// be 0, which on the wire means that there is no twin.
func ClassFromCTF(ec ctf.EventClass, kinds []string) EventClass {
	c := EventClass{ID: ec.ID, Name: ec.Name, Truncation: ec.Truncation, Fields: make([]ClassField, len(ec.Fields))}
	if ec.Twin() {
		c.TruncatedID = ec.TruncatedID
	}
	for i, f := range ec.Fields {
		c.Fields[i] = ClassField{Name: f.Name, Type: f.Type.String()}
		switch {
		case i < len(kinds):
			c.Fields[i].Kind = kinds[i]
		case f.Meaning != ctf.Number:
			c.Fields[i].Kind = f.Meaning.String() // bool, duration, trace_id, span_id
		}
	}
	if s := ec.Span; s != nil {
		c.Span = &MarkerSpan{Duration: s.Duration, Start: s.Start, Keys: slices.Clone(s.Keys)}
	}
	return c
}

// meanings are the marker kinds that a CTF field type alone does not say.
var meanings = []struct {
	kind string
	m    ctf.Meaning
}{{"bool", ctf.Boolean}, {"duration", ctf.Duration}, {"trace_id", ctf.TraceID}, {"span_id", ctf.SpanID}}

// CTF returns the CTF event class, for ctf.Writer.AddEventClasses. It
// fails on field types that CTF does not have; the trace writer validates
// the rest.
func (c *EventClass) CTF() (ctf.EventClass, error) {
	ec := ctf.EventClass{ID: c.ID, Name: c.Name, Truncation: c.Truncation, Fields: make([]ctf.Field, len(c.Fields))}
	ec.TruncatedID = c.truncatedID()
	for i, f := range c.Fields {
		ft, err := parseFieldType(f.Type)
		if err != nil {
			return ctf.EventClass{}, fmt.Errorf("event class %q field %q: %w", c.Name, f.Name, err)
		}
		ec.Fields[i] = ctf.Field{Name: f.Name, Type: ft}
		for _, m := range meanings {
			if t, _ := m.m.Type(); f.Kind == m.kind && ft == t {
				ec.Fields[i].Meaning = m.m
			}
		}
	}
	if s := c.Span; s != nil {
		ec.Span = &ctf.Span{Duration: s.Duration, Start: s.Start, Keys: slices.Clone(s.Keys)}
	}
	return ec, nil
}

// truncatedID is the id of the class's records that end with the
// truncation bitmask: TruncatedID, or ID for classes of agents that put
// the bitmask on every record.
func (c *EventClass) truncatedID() uint16 {
	if c.Truncation && c.TruncatedID != 0 {
		return c.TruncatedID
	}
	return c.ID
}

// parseFieldType is the inverse of ctf.FieldType.String.
func parseFieldType(s string) (ctf.FieldType, error) {
	switch s {
	case "string":
		return ctf.FieldType{Kind: ctf.String}, nil
	case "bytes":
		return ctf.FieldType{Kind: ctf.Bytes}, nil
	}
	if rest, ok := strings.CutPrefix(s, "bytes["); ok {
		// A fixed-size array, "bytes[16]".
		if n, err := strconv.Atoi(strings.TrimSuffix(rest, "]")); err == nil && n > 0 && n <= ctf.MaxFixedBytes {
			if ft := (ctf.FieldType{Kind: ctf.Bytes, Bits: 8 * n}); ft.String() == s {
				return ft, nil
			}
		}
	}
	for _, k := range []ctf.Kind{ctf.Uint, ctf.Int, ctf.Float} {
		name := k.String()
		if rest, ok := strings.CutPrefix(s, name); ok {
			bits, err := strconv.Atoi(rest)
			if err != nil {
				break
			}
			ft := ctf.FieldType{Kind: k, Bits: bits}
			if ft.String() == s && validBits(k, bits) {
				return ft, nil
			}
		}
	}
	return ctf.FieldType{}, fmt.Errorf("%w: unknown field type %q", ErrFrame, s)
}

func validBits(k ctf.Kind, bits int) bool {
	if k == ctf.Float {
		return bits == 32 || bits == 64
	}
	return bits == 8 || bits == 16 || bits == 32 || bits == 64
}

// Record is one decoded event record.
type Record struct {
	Class *EventClass
	// TS is the timestamp in clock cycles (ns for tracemark sessions).
	TS uint64
	// Fields holds one value per field of Class. String and byte values
	// alias the packet: valid only during the callback.
	Fields []ctf.Value
	// Truncated has bit i set if the recorder cut field i.
	Truncated uint8
}

// Decoder decodes the records of packet frames. It knows the classes
// announced so far by classes frames.
type Decoder struct {
	classes map[uint16]*EventClass
	fields  []ctf.Value
}

// NewDecoder returns a Decoder that knows no class yet.
func NewDecoder() *Decoder { return &Decoder{classes: make(map[uint16]*EventClass)} }

// Add makes classes known.
func (d *Decoder) Add(classes []EventClass) error {
	for i := range classes {
		c := classes[i]
		for _, f := range c.Fields {
			if _, err := parseFieldType(f.Type); err != nil {
				return fmt.Errorf("event class %q field %q: %w", c.Name, f.Name, err)
			}
		}
		d.classes[c.ID] = &c
		if c.Truncation {
			d.classes[c.truncatedID()] = &c
		}
	}
	return nil
}

// Class returns the class with id, or nil.
func (d *Decoder) Class(id uint16) *EventClass { return d.classes[id] }

// Decode calls fn for every record of data, the records of one packet.
func (d *Decoder) Decode(data []byte, fn func(*Record) error) error {
	var rec Record
	for off := 0; off < len(data); {
		n, err := d.decodeOne(data[off:], &rec)
		if err != nil {
			return fmt.Errorf("%w: record at offset %d: %v", ErrFrame, off, err)
		}
		if err := fn(&rec); err != nil {
			return err
		}
		off += n
	}
	return nil
}

func (d *Decoder) decodeOne(b []byte, rec *Record) (int, error) {
	if len(b) < ctf.EventHeaderSize {
		return 0, fmt.Errorf("truncated header")
	}
	id := binary.LittleEndian.Uint16(b)
	c := d.classes[id]
	if c == nil {
		return 0, fmt.Errorf("unknown class id %d", id)
	}
	rec.Class, rec.TS, rec.Truncated = c, binary.LittleEndian.Uint64(b[2:]), 0
	d.fields = d.fields[:0]
	p := ctf.EventHeaderSize
	for _, f := range c.Fields {
		ft, _ := parseFieldType(f.Type) // checked by Add
		v, n, err := decodeValue(b[p:], ft)
		if err != nil {
			return 0, fmt.Errorf("%s field %s: %v", c.Name, f.Name, err)
		}
		d.fields = append(d.fields, v)
		p += n
	}
	if c.Truncation && id == c.truncatedID() {
		if p >= len(b) {
			return 0, fmt.Errorf("%s: missing truncation trailer", c.Name)
		}
		rec.Truncated = b[p]
		p++
	}
	rec.Fields = d.fields
	return p, nil
}

func decodeValue(b []byte, ft ctf.FieldType) (ctf.Value, int, error) {
	switch ft.Kind {
	case ctf.String:
		z := bytes.IndexByte(b, 0)
		if z < 0 {
			return ctf.Value{}, 0, fmt.Errorf("unterminated string")
		}
		return ctf.Value{Kind: ctf.String, Bytes: b[:z:z]}, z + 1, nil
	case ctf.Bytes:
		if n := ft.Bits / 8; n > 0 { // a fixed-size array
			if len(b) < n {
				return ctf.Value{}, 0, fmt.Errorf("truncated %s", ft)
			}
			return ctf.Value{Kind: ctf.Bytes, Bytes: b[:n:n]}, n, nil
		}
		if len(b) < 4 {
			return ctf.Value{}, 0, fmt.Errorf("truncated length")
		}
		l := binary.LittleEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return ctf.Value{}, 0, fmt.Errorf("length %d past the end", l)
		}
		return ctf.Value{Kind: ctf.Bytes, Bytes: b[4 : 4+l : 4+l]}, 4 + int(l), nil
	}
	n := ft.Bits / 8
	if len(b) < n {
		return ctf.Value{}, 0, fmt.Errorf("truncated %s", ft)
	}
	var u uint64
	switch n {
	case 1:
		u = uint64(b[0])
	case 2:
		u = uint64(binary.LittleEndian.Uint16(b))
	case 4:
		u = uint64(binary.LittleEndian.Uint32(b))
	default:
		u = binary.LittleEndian.Uint64(b)
	}
	switch ft.Kind {
	case ctf.Int:
		shift := 64 - uint(ft.Bits)
		return ctf.IntValue(int64(u<<shift) >> shift), n, nil
	case ctf.Uint:
		return ctf.UintValue(u), n, nil
	}
	if n == 4 {
		return ctf.FloatValue(float64(math.Float32frombits(uint32(u)))), n, nil
	}
	return ctf.FloatValue(math.Float64frombits(u)), n, nil
}
