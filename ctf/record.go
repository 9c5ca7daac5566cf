package ctf

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// RecordDecoder decodes event records outside a trace file: the records
// of packets that arrive some other way (tracemark's agent sends them in
// the frames of its protocol), given their event classes. Records have the
// layout of the package documentation, without a stream event context
// unless SetContext gives one.
// The zero value knows no class; a RecordDecoder is not safe for
// concurrent use.
type RecordDecoder struct {
	tab *classTable
}

// AddClasses makes event classes known, replacing those of the same ids.
// It checks their field types, which decoding depends on; names are not
// checked (see EventClass.Validate).
func (d *RecordDecoder) AddClasses(ecs ...EventClass) error {
	add := make([]*EventClass, 0, len(ecs))
	for i := range ecs {
		ec := &ecs[i]
		for _, f := range ec.Fields {
			if err := f.Type.validate(); err != nil {
				return fmt.Errorf("event class %d (%q) field %q: %w: %v", ec.ID, ec.Name, f.Name, ErrInvalidClass, err)
			}
		}
		add = append(add, ec.clone())
	}
	d.tab = d.tab.with(add)
	return nil
}

// SetContext says that every record carries the stream event context
// fields after its header, as in a trace whose TraceInfo.EventContext
// they are; Decode then fills ev.Context and ev.ContextFields. nil, the
// default, is no context. The field types must be valid.
func (d *RecordDecoder) SetContext(fields []Field) {
	d.tab = d.tab.with(nil).withContext(slices.Clone(fields))
}

// Class returns the known class with id, or nil.
func (d *RecordDecoder) Class(id uint16) *EventClass { return d.tab.get(id) }

// Decode decodes the event record at the start of b, which ends where the
// packet's records end, and returns its size. It sets ev.Class (one of
// the decoder's own copies), ev.Cycles, ev.Fields, whose byte slices alias
// b, and ev.Truncated, and ev.Context and ev.ContextFields (empty unless
// SetContext gave a context); it leaves the other fields of ev alone.
// A record of an unknown class or that does not follow its class's layout
// is an error wrapping ErrCorrupt, whatever b holds.
func (d *RecordDecoder) Decode(b []byte, ev *Event) (int, error) {
	n, derr := decodeRecord(b, 0, d.tab, ev, true)
	if derr != nil {
		return 0, fmt.Errorf("%w: %s", ErrCorrupt, derr.msg)
	}
	return n, nil
}

// RecordSize returns the size of the event record of class ec at the
// start of b (its header, fields and trailer, without a stream event
// context), without decoding its values: for a reader that walks the
// records of a packet. It does not check that the header's id is ec's
// (or its truncated twin's), but reads the trailer only after the twin's. A
// record that does not fit in b is an error wrapping ErrCorrupt. ec must
// be valid (EventClass.Validate, or the field types at least).
func RecordSize(b []byte, ec *EventClass) (int, error) {
	if len(b) < EventHeaderSize {
		return 0, fmt.Errorf("%w: truncated event header: %d bytes left in packet, need %d", ErrCorrupt, len(b), EventHeaderSize)
	}
	n, _, derr := skipFields(b, EventHeaderSize, ec, 0, binary.LittleEndian.Uint16(b))
	if derr != nil {
		return 0, fmt.Errorf("%w: %s", ErrCorrupt, derr.msg)
	}
	return n, nil
}

// RecordSizeFrom is RecordSize for a reader that knows where field i of
// ec starts in every record of the class: at offset off from the record's
// start, the fields before it having fixed sizes. It walks only the
// fields from i on, which a reader that measures every record of a packet
// (a recorder's drain) saves on classes with leading fixed fields.
func RecordSizeFrom(b []byte, ec *EventClass, i, off int) (int, error) {
	if i < 0 || i > len(ec.Fields) || off < EventHeaderSize {
		return 0, fmt.Errorf("%w: field %d at offset %d of event %q", ErrInvalidClass, i, off, ec.Name)
	}
	if len(b) < off {
		return 0, fmt.Errorf("%w: truncated event %q: %d bytes left in packet, its field %d is at %d", ErrCorrupt, ec.Name, len(b), i, off)
	}
	n, _, derr := skipFields(b, off, ec, i, binary.LittleEndian.Uint16(b))
	if derr != nil {
		return 0, fmt.Errorf("%w: %s", ErrCorrupt, derr.msg)
	}
	return n, nil
}
