package ctf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Kind is the kind of an event field.
type Kind uint8

// Field kinds.
const (
	// Int is a signed integer of 8, 16, 32 or 64 bits.
	Int Kind = iota + 1
	// Uint is an unsigned integer of 8, 16, 32 or 64 bits.
	Uint
	// Float is an IEEE 754 binary floating point number of 32 or 64 bits.
	Float
	// String is a null-terminated UTF-8 string.
	String
	// Bytes is a byte sequence: a uint32 length followed by that many
	// bytes; or, when its FieldType has Bits, a fixed-size array of
	// Bits/8 bytes (TSDL uint8 name[N]), such as a trace id.
	Bytes
)

// String returns the lower-case name of the kind.
func (k Kind) String() string {
	switch k {
	case Int:
		return "int"
	case Uint:
		return "uint"
	case Float:
		return "float"
	case String:
		return "string"
	case Bytes:
		return "bytes"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// FieldType is the type of an event field.
type FieldType struct {
	Kind Kind
	// Bits is the width of Int and Uint (8, 16, 32 or 64) and of Float
	// (32 or 64) fields. It must be zero for String, and for Bytes it is
	// zero (a sequence) or the size of a fixed array in bits (a multiple
	// of 8, at most MaxFixedBytes bytes).
	Bits int
}

// MaxFixedBytes is the largest fixed-size Bytes field, in bytes.
const MaxFixedBytes = 256

// String returns a short name such as "int64", "float32", "string",
// "bytes" or, for a fixed array of 16 bytes, "bytes[16]".
func (t FieldType) String() string {
	if t.Kind == Bytes && t.Bits > 0 {
		return "bytes[" + strconv.Itoa(t.Bits/8) + "]"
	}
	if t.Kind == String || t.Kind == Bytes {
		return t.Kind.String()
	}
	return t.Kind.String() + strconv.Itoa(t.Bits)
}

// Validate returns an error wrapping ErrInvalidClass if no class may
// have a field of type t (EventClass.Validate checks each field's).
func (t FieldType) Validate() error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidClass, err)
	}
	return nil
}

func (t FieldType) validate() error {
	switch t.Kind {
	case Int, Uint:
		switch t.Bits {
		case 8, 16, 32, 64:
			return nil
		}
	case Float:
		if t.Bits == 32 || t.Bits == 64 {
			return nil
		}
	case String:
		if t.Bits == 0 {
			return nil
		}
	case Bytes:
		if t.Bits == 0 || t.Bits > 0 && t.Bits%8 == 0 && t.Bits <= 8*MaxFixedBytes {
			return nil
		}
	default:
		return fmt.Errorf("unknown field kind %d", t.Kind)
	}
	return fmt.Errorf("invalid bit width %d for %s field", t.Bits, t.Kind)
}

// Field is one payload field of an event class.
type Field struct {
	// Name is a TSDL identifier: an ASCII letter followed by ASCII letters,
	// digits and underscores. Names starting with an underscore are
	// reserved for the fields the writer adds (sequence lengths and the
	// truncation trailer).
	Name string
	Type FieldType
	// Meaning says what a field holds when it is more than a number or
	// bytes: a bool (a uint8, 0 or 1), a duration (an int64 of
	// nanoseconds), a trace id (16 fixed bytes) or a span id (8 fixed
	// bytes). It is written as the field's TSDL type name (the aliases
	// bool_t and duration_ns_t, and trace_id_byte_t and span_id_byte_t as
	// the element type of the arrays, which other readers see as the
	// plain integers they alias) and read back from it.
	Meaning Meaning
}

// Meaning is what a field means beyond its type.
type Meaning uint8

// Meanings.
const (
	Number   Meaning = iota // a plain number, string or bytes
	Boolean                 // a uint8: 0 false, 1 true
	Duration                // an int64 of nanoseconds
	TraceID                 // 16 fixed bytes: a trace id, such as OpenTelemetry's
	SpanID                  // 8 fixed bytes: a span id, such as OpenTelemetry's
)

// String returns "number", "bool", "duration", "trace_id" or "span_id".
func (m Meaning) String() string {
	switch m {
	case Number:
		return "number"
	case Boolean:
		return "bool"
	case Duration:
		return "duration"
	case TraceID:
		return "trace_id"
	case SpanID:
		return "span_id"
	}
	return "meaning(" + strconv.Itoa(int(m)) + ")"
}

// Type returns the only field type that fields of meaning m may have, or
// false for Number.
func (m Meaning) Type() (FieldType, bool) { return m.typeFor() }

// typeFor returns the only field type of meaning m, or false for Number.
func (m Meaning) typeFor() (FieldType, bool) {
	switch m {
	case Boolean:
		return FieldType{Uint, 8}, true
	case Duration:
		return FieldType{Int, 64}, true
	case TraceID:
		return FieldType{Bytes, 128}, true
	case SpanID:
		return FieldType{Bytes, 64}, true
	}
	return FieldType{}, false
}

// MaxTruncationFields is the largest number of fields an event class with a
// truncation trailer may have: the trailer is an 8-bit mask.
const MaxTruncationFields = 8

// EventClass describes one kind of event record (one marker).
type EventClass struct {
	// ID is the value of the event header's id field for this class.
	ID uint16
	// Name is the event name shown by trace readers, for example
	// "http:request". Any printable UTF-8 text without control characters
	// is accepted.
	Name string
	// Fields are the payload fields, in encoding order.
	Fields []Field
	// Truncation says that the recorder may cut the class's fields.
	// Records of which it cut none carry ID and end with the last field;
	// records with a cut field carry TruncatedID instead and end with a
	// uint8 bitmask named _truncated (bit i set: the recorder cut field
	// i). The metadata declares the two as event classes of the same name,
	// so that trace readers show the bitmask only on the events that were
	// cut; this package's Reader reads them back as one class. At most
	// MaxTruncationFields fields are allowed then.
	//
	// A TruncatedID equal to ID, or 0, means that every record of the class ends
	// with the bitmask, cut or not: the layout of traces written before
	// the twin classes, which the Reader still reads as such.
	Truncation  bool
	TruncatedID uint16
	// Span, if set, says how the class's events make spans (slices in
	// Perfetto): see Span. It is written into the metadata as a comment
	// that other readers ignore.
	Span *Span
	// Module, if set, is the code the class's marker belongs to, as
	// "path@version" or a path alone (marker.Module's String): the
	// instrumentation scope of its events when they are exported. It
	// is written into the same comment.
	Module string
}

// Twin reports whether the class's truncated records carry an id of
// their own (TruncatedID), declared as a second event class.
func (ec *EventClass) Twin() bool { return ec.Truncation && ec.truncatedID() != ec.ID }

// truncatedID is the id of the class's records that end with the
// trailer: TruncatedID, or ID when that is 0 (the older layout).
func (ec *EventClass) truncatedID() uint16 {
	if ec.TruncatedID == 0 {
		return ec.ID
	}
	return ec.TruncatedID
}

// HasTrailer reports whether a record of the class with event id id ends
// with the _truncated bitmask.
func (ec *EventClass) HasTrailer(id uint16) bool {
	return ec.Truncation && id == ec.truncatedID()
}

// clone returns a deep copy of ec.
func (ec EventClass) clone() *EventClass {
	c := ec
	c.Fields = append([]Field(nil), ec.Fields...)
	if ec.Span != nil {
		sp := *ec.Span
		sp.Keys = append([]string(nil), sp.Keys...)
		c.Span = &sp
	}
	return &c
}

func (ec *EventClass) equal(o *EventClass) bool {
	if ec.ID != o.ID || ec.Name != o.Name || ec.Truncation != o.Truncation || len(ec.Fields) != len(o.Fields) ||
		ec.Truncation && ec.truncatedID() != o.truncatedID() || !ec.Span.equal(o.Span) || ec.Module != o.Module {
		return false
	}
	for i := range ec.Fields {
		if ec.Fields[i] != o.Fields[i] {
			return false
		}
	}
	return true
}

// Validate reports whether the event class can be written: a valid event
// name, valid and unique field names, valid field types, at most
// MaxTruncationFields fields when Truncation is set, a span that fits
// the class, and a module that is printable text (UTF-8 without control
// characters).
func (ec *EventClass) Validate() error {
	if err := checkText("event name", ec.Name); err != nil {
		return fmt.Errorf("event class %d: %w", ec.ID, err)
	}
	if ec.Truncation && len(ec.Fields) > MaxTruncationFields {
		return fmt.Errorf("event class %d (%q): %w: %d fields with a truncation trailer, at most %d allowed",
			ec.ID, ec.Name, ErrInvalidClass, len(ec.Fields), MaxTruncationFields)
	}
	seen := make(map[string]bool, len(ec.Fields))
	for i, f := range ec.Fields {
		if err := checkFieldName(f.Name); err != nil {
			return fmt.Errorf("event class %d (%q) field %d: %w", ec.ID, ec.Name, i, err)
		}
		if seen[f.Name] {
			return fmt.Errorf("event class %d (%q): %w: duplicate field name %q", ec.ID, ec.Name, ErrInvalidClass, f.Name)
		}
		seen[f.Name] = true
		if err := f.Type.validate(); err != nil {
			return fmt.Errorf("event class %d (%q) field %q: %w: %v", ec.ID, ec.Name, f.Name, ErrInvalidClass, err)
		}
		if t, ok := f.Meaning.typeFor(); ok && f.Type != t || f.Meaning > SpanID {
			return fmt.Errorf("event class %d (%q) field %q: %w: meaning %d needs type %v, not %v", ec.ID, ec.Name, f.Name, ErrInvalidClass, f.Meaning, t, f.Type)
		}
	}
	if err := ec.Span.validate(ec); err != nil {
		return fmt.Errorf("event class %d (%q): %w: %v", ec.ID, ec.Name, ErrInvalidClass, err)
	}
	if ec.Module != "" {
		if err := checkText("module", ec.Module); err != nil {
			return fmt.Errorf("event class %d (%q): %w: %v", ec.ID, ec.Name, ErrInvalidClass, err)
		}
	}
	return nil
}

// Clock describes the clock that event timestamps count.
type Clock struct {
	// Name is a TSDL identifier such as "monotonic".
	Name string
	// Frequency is the number of cycles per second (1e9 for nanoseconds).
	Frequency uint64
	// OffsetSeconds and Offset (in cycles) give the time of cycle 0
	// relative to the clock's origin (the Unix epoch for LTTng-like
	// traces): time = OffsetSeconds s + (Offset + cycles) / Frequency s.
	OffsetSeconds int64
	Offset        uint64
	// Description is a free text shown by trace readers.
	Description string
	// UUID identifies the clock; Create chooses a random one if it is zero.
	UUID [16]byte
}

// TraceInfo describes a trace as a whole.
type TraceInfo struct {
	// UUID identifies the trace; Create chooses a random one if it is zero.
	UUID [16]byte
	// Clock is the clock of all timestamps.
	Clock Clock
	// Env is the TSDL env block: hostname, tracer_name, procname, vpid...
	// Keys must be TSDL identifiers. Values that are canonical decimal
	// integers are written as TSDL integers (like LTTng's vpid), except
	// for hostname, domain, procname, tracer_name and trace_name, which
	// are always strings; vpid must be an integer. Babeltrace shows
	// hostname:domain:procname:(vpid) in front of every event. Create sets
	// tracer_name to "tracemark" if absent.
	Env map[string]string
	// EventContext, if set, is the stream event context: fields that every
	// event record carries between its header and its payload (what
	// LTTng's add-context gives, such as pid, procname and cpu), shown by
	// Babeltrace with every event. Field names follow the rules of event
	// fields; types are integers or strings.
	EventContext []Field
}

// PacketInfo is the packet context of one packet.
type PacketInfo struct {
	// BeginTS and EndTS bound the timestamps of the packet's events, in
	// clock cycles. Packets of a stream must not overlap in time.
	BeginTS, EndTS uint64
	// Seq is the packet sequence number in its stream. It must increase
	// from packet to packet; a gap tells readers that packets were lost.
	Seq uint64
	// Discarded is the number of events the recorder discarded in this
	// stream since the recording started (a cumulative count).
	Discarded uint64
	// CPU is the packet context's cpu_id field (the recording shard).
	CPU uint32
}

// Sentinel errors. Errors returned by this package wrap one of them where it
// applies, so callers can test with errors.Is.
var (
	// ErrInvalidName is returned for an event, field, env or clock name
	// that cannot be written into TSDL metadata.
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidClass is returned for an event class that cannot be
	// written, or that conflicts with an already added class.
	ErrInvalidClass = errors.New("invalid event class")
	// ErrInvalidPacket is returned by WritePacket for packet info or
	// records that would make a trace readers reject.
	ErrInvalidPacket = errors.New("invalid packet")
	// ErrCorrupt is returned by the Reader for data stream content that
	// does not follow the layout described by the metadata.
	ErrCorrupt = errors.New("corrupt data stream")
	// ErrMetadata is returned by Open for metadata this package cannot
	// parse (only the metadata written by Writer is supported).
	ErrMetadata = errors.New("unsupported or invalid metadata")
	// ErrClosed is returned when using a closed Writer.
	ErrClosed = errors.New("writer closed")
)

// isIdent reports whether s is a TSDL identifier.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// tsdlKeywords cannot be used as bare identifiers in TSDL.
var tsdlKeywords = map[string]bool{
	"align": true, "callsite": true, "const": true, "char": true, "clock": true, "double": true,
	"enum": true, "env": true, "event": true, "floating_point": true, "float": true,
	"integer": true, "int": true, "long": true, "short": true, "signed": true,
	"stream": true, "string": true, "struct": true, "trace": true, "typealias": true,
	"typedef": true, "unsigned": true, "variant": true, "void": true, "_Bool": true,
	"_Complex": true, "_Imaginary": true, "TRUE": true, "FALSE": true, "true": true, "false": true,
}

func checkFieldName(name string) error {
	if !isIdent(name) {
		return fmt.Errorf("%w: field name %q is not an identifier ([A-Za-z][A-Za-z0-9_]*)", ErrInvalidName, name)
	}
	if name[0] == '_' {
		return fmt.Errorf("%w: field name %q starts with an underscore (reserved)", ErrInvalidName, name)
	}
	return nil
}

func checkIdent(what, name string) error {
	if !isIdent(name) || tsdlKeywords[name] {
		return fmt.Errorf("%w: %s %q is not a TSDL identifier ([A-Za-z_][A-Za-z0-9_]*, not a keyword)", ErrInvalidName, what, name)
	}
	return nil
}

// checkText validates text that is written as a TSDL string literal.
func checkText(what, s string) error {
	if what == "event name" && s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidName, what)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalidName, what, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s %q contains a control character", ErrInvalidName, what, s)
		}
	}
	return nil
}

// Value is a decoded (or to be encoded) field value. Which member is used
// depends on Kind.
type Value struct {
	Kind  Kind
	Int   int64   // Int fields
	Uint  uint64  // Uint fields
	Float float64 // Float fields (float32 values are converted exactly)
	// Bytes holds String fields (without the terminating NUL) and Bytes
	// fields. In values returned by a Reader it aliases the reader's buffer
	// and is only valid until the next call to Next.
	Bytes []byte
}

// IntValue returns a Value for an Int field.
func IntValue(v int64) Value { return Value{Kind: Int, Int: v} }

// UintValue returns a Value for a Uint field.
func UintValue(v uint64) Value { return Value{Kind: Uint, Uint: v} }

// FloatValue returns a Value for a Float field.
func FloatValue(v float64) Value { return Value{Kind: Float, Float: v} }

// StringValue returns a Value for a String field.
func StringValue(s string) Value { return Value{Kind: String, Bytes: []byte(s)} }

// BytesValue returns a Value for a Bytes field.
func BytesValue(b []byte) Value { return Value{Kind: Bytes, Bytes: b} }

// String formats the value: integers in decimal, floats with strconv's
// shortest representation, strings quoted, bytes in hexadecimal.
func (v Value) String() string {
	switch v.Kind {
	case Int:
		return strconv.FormatInt(v.Int, 10)
	case Uint:
		return strconv.FormatUint(v.Uint, 10)
	case Float:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case String:
		return strconv.Quote(string(v.Bytes))
	case Bytes:
		return fmt.Sprintf("%x", v.Bytes)
	}
	return "<invalid>"
}

// Equal reports whether two values have the same kind and content. Float
// values are equal if they have the same bits or are both NaN.
func (v Value) Equal(o Value) bool {
	if v.Kind != o.Kind {
		return false
	}
	switch v.Kind {
	case Int:
		return v.Int == o.Int
	case Uint:
		return v.Uint == o.Uint
	case Float:
		return math.Float64bits(v.Float) == math.Float64bits(o.Float) || (math.IsNaN(v.Float) && math.IsNaN(o.Float))
	case String, Bytes:
		return string(v.Bytes) == string(o.Bytes)
	}
	return true
}
