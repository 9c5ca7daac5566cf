package wire

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/evctx"
	"github.com/tracemark/tracemark/internal/ident"
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
	c.Module = ec.Module
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
	if ident.Printable(c.Module) {
		// A module that is not text is left out, not the class: it
		// only names the events' scope.
		ec.Module = c.Module
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
	// ThreadID is the id of the thread that fired the event as the
	// process sees it, in streams that record it (a vtid or tid in
	// Hello.Context), else 0.
	ThreadID uint32
	// Context holds the values of the stream's context fields
	// (Hello.Context), in order; it aliases the packet like Fields.
	Context []ctf.Value
}

// Decoder decodes the records of packet frames with ctf's record codec.
// It knows the classes announced so far by classes frames.
type Decoder struct {
	classes map[uint16]*EventClass
	rd      ctf.RecordDecoder
	ev      ctf.Event
	tid     int // the context's thread id field, or -1
}

// SetContext says which context fields the records carry after their
// header: call it, before Decode, with a stream's Hello.Context. It fails
// with ErrFrame for a field unknown or given twice.
func (d *Decoder) SetContext(names []string) error {
	fields, err := evctx.Fields(names)
	if err != nil {
		return fmt.Errorf("%w: hello: %v", ErrFrame, err)
	}
	d.tid = slices.IndexFunc(names, evctx.IsThread)
	d.rd.SetContext(fields)
	return nil
}

// NewDecoder returns a Decoder that knows no class yet.
func NewDecoder() *Decoder { return &Decoder{classes: make(map[uint16]*EventClass), tid: -1} }

// Add makes classes known.
func (d *Decoder) Add(classes []EventClass) error {
	// One AddClasses for all: each call copies the decoder's id table,
	// which twin ids (bit 15) make 32K entries long.
	ecs := make([]ctf.EventClass, len(classes))
	for i := range classes {
		ec, err := classes[i].CTF()
		if err != nil {
			return err
		}
		ecs[i] = ec
	}
	if err := d.rd.AddClasses(ecs...); err != nil {
		return fmt.Errorf("%w: %v", ErrFrame, err)
	}
	for i := range classes {
		c := classes[i]
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
		n, err := d.DecodeRecord(data[off:], &rec)
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

// DecodeRecord decodes the record at the start of data into rec, as
// Decode gives it to its fn, and returns its size. rec's values alias
// data and the decoder's own buffers: valid until the next DecodeRecord
// or Decode. A record of an unknown class or that does not follow its
// class's layout is an error wrapping ctf.ErrCorrupt.
func (d *Decoder) DecodeRecord(data []byte, rec *Record) (int, error) {
	n, err := d.rd.Decode(data, &d.ev)
	if err != nil {
		return 0, err
	}
	*rec = Record{Class: d.classes[d.ev.Class.ID], TS: d.ev.Cycles, Fields: d.ev.Fields, Truncated: d.ev.Truncated, Context: d.ev.Context}
	if d.tid >= 0 {
		rec.ThreadID = uint32(d.ev.Context[d.tid].Uint)
	}
	return n, nil
}
