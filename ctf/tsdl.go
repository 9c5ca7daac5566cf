package ctf

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Layout constants of the binary format.
const (
	// PacketMagic is the first field of every packet header.
	PacketMagic = 0xC1FC1FC1
	// PacketHeaderSize is the size of the packet header (magic, uuid,
	// stream_id).
	PacketHeaderSize = 4 + 16 + 4
	// PacketContextSize is the size of the packet context.
	PacketContextSize = 6*8 + 4
	// PacketPreambleSize is the size of header and context together: the
	// offset of the first event record in a packet.
	PacketPreambleSize = PacketHeaderSize + PacketContextSize

	// streamClassID is the only stream class; the packet header's
	// stream_id field always holds it. Recording shards are CTF data
	// streams of this class, one file each.
	streamClassID = 0
	// metadataName is the name of the metadata file in a trace directory.
	metadataName = "metadata"
	// streamFilePrefix is the prefix of data stream file names, followed
	// by the stream number (like LTTng's per-CPU "channel0_<cpu>").
	streamFilePrefix = "channel0_"
	// clockAlias is the TSDL type alias of clock-mapped timestamps.
	clockAlias = "uint64_clock_t"
)

// Offsets of packet context fields within a packet.
const (
	offTSBegin  = PacketHeaderSize
	offTSEnd    = offTSBegin + 8
	offContent  = offTSEnd + 8
	offPktSize  = offContent + 8
	offSeq      = offPktSize + 8
	offDiscard  = offSeq + 8
	offCPU      = offDiscard + 8
	metadataTop = "/* CTF 1.8 */\n"
)

// putPreamble encodes a packet header and context into b[:PacketPreambleSize].
func putPreamble(b []byte, uuid *[16]byte, p *PacketInfo, contentBytes, packetBytes uint64) {
	_ = b[PacketPreambleSize-1]
	binary.LittleEndian.PutUint32(b[0:], PacketMagic)
	copy(b[4:20], uuid[:])
	binary.LittleEndian.PutUint32(b[20:], streamClassID)
	binary.LittleEndian.PutUint64(b[offTSBegin:], p.BeginTS)
	binary.LittleEndian.PutUint64(b[offTSEnd:], p.EndTS)
	binary.LittleEndian.PutUint64(b[offContent:], contentBytes*8)
	binary.LittleEndian.PutUint64(b[offPktSize:], packetBytes*8)
	binary.LittleEndian.PutUint64(b[offSeq:], p.Seq)
	binary.LittleEndian.PutUint64(b[offDiscard:], p.Discarded)
	binary.LittleEndian.PutUint32(b[offCPU:], p.CPU)
}

// tsdlString quotes s as a TSDL string literal.
func tsdlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

func uuidString(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// scalarAliases are the TSDL type aliases of the fixed-size field types.
var scalarAliases = []struct {
	name string
	typ  FieldType
	decl string
}{
	{"uint8_t", FieldType{Uint, 8}, "integer { size = 8; align = 8; signed = false; }"},
	{"uint16_t", FieldType{Uint, 16}, "integer { size = 16; align = 8; signed = false; }"},
	{"uint32_t", FieldType{Uint, 32}, "integer { size = 32; align = 8; signed = false; }"},
	{"uint64_t", FieldType{Uint, 64}, "integer { size = 64; align = 8; signed = false; }"},
	{"int8_t", FieldType{Int, 8}, "integer { size = 8; align = 8; signed = true; }"},
	{"int16_t", FieldType{Int, 16}, "integer { size = 16; align = 8; signed = true; }"},
	{"int32_t", FieldType{Int, 32}, "integer { size = 32; align = 8; signed = true; }"},
	{"int64_t", FieldType{Int, 64}, "integer { size = 64; align = 8; signed = true; }"},
	{"float32_t", FieldType{Float, 32}, "floating_point { exp_dig = 8; mant_dig = 24; align = 8; }"},
	{"float64_t", FieldType{Float, 64}, "floating_point { exp_dig = 11; mant_dig = 53; align = 8; }"},
}

// meaningAliases name the types of fields with a Meaning (for trace and
// span ids, the element type of the array); readers that do not know them
// see the integers they alias.
var meaningAliases = []struct {
	name    string
	meaning Meaning
	decl    string
}{
	{"bool_t", Boolean, "integer { size = 8; align = 8; signed = false; }"},
	{"duration_ns_t", Duration, "integer { size = 64; align = 8; signed = true; }"},
	{"trace_id_byte_t", TraceID, "integer { size = 8; align = 8; signed = false; }"},
	{"span_id_byte_t", SpanID, "integer { size = 8; align = 8; signed = false; }"},
}

// meaningAlias returns the alias of meaning m, or "".
func meaningAlias(m Meaning) string {
	for _, a := range meaningAliases {
		if m != Number && a.meaning == m {
			return a.name
		}
	}
	return ""
}

// typeName returns the TSDL type name of a fixed-size field.
func typeName(f Field) string {
	if a := meaningAlias(f.Meaning); a != "" {
		return a
	}
	return aliasOf(f.Type)
}

func aliasOf(t FieldType) string {
	for _, a := range scalarAliases {
		if a.typ == t {
			return a.name
		}
	}
	return ""
}

// validateInfo checks everything of info that goes into the metadata.
func validateInfo(info *TraceInfo) error {
	if err := checkIdent("clock name", info.Clock.Name); err != nil {
		return err
	}
	if info.Clock.Frequency == 0 {
		return fmt.Errorf("%w: clock %q has frequency 0", ErrInvalidName, info.Clock.Name)
	}
	if !newClockConv(&info.Clock).baseOK {
		return fmt.Errorf("%w: clock %q offset (%d s + %d cycles) is out of the range of int64 nanoseconds", ErrInvalidName, info.Clock.Name, info.Clock.OffsetSeconds, info.Clock.Offset)
	}
	if err := checkText("clock description", info.Clock.Description); err != nil {
		return err
	}
	for k, v := range info.Env {
		if err := checkIdent("env key", k); err != nil {
			return err
		}
		if err := checkText("env value of "+k, v); err != nil {
			return err
		}
		if k == "vpid" && !envIsInt(k, v) {
			return fmt.Errorf("%w: env value of vpid %q is not a decimal integer (Babeltrace reads it as one)", ErrInvalidName, v)
		}
	}
	return validateContext(info.EventContext)
}

// validateContext checks the stream event context: named like event
// fields, integers or strings.
func validateContext(ctx []Field) error {
	seen := map[string]bool{}
	for _, f := range ctx {
		if err := checkFieldName(f.Name); err != nil {
			return fmt.Errorf("event context: %w", err)
		}
		if seen[f.Name] {
			return fmt.Errorf("event context: %w: duplicate field name %q", ErrInvalidClass, f.Name)
		}
		seen[f.Name] = true
		if err := f.Type.validate(); err != nil {
			return fmt.Errorf("event context field %q: %w: %v", f.Name, ErrInvalidClass, err)
		}
		if f.Type.Kind != Int && f.Type.Kind != Uint && f.Type.Kind != String {
			return fmt.Errorf("event context field %q: %w: want an integer or a string, not %s", f.Name, ErrInvalidClass, f.Type)
		}
	}
	return nil
}

// contextDecl returns the TSDL declaration of a stream event context.
func contextDecl(ctx []Field) string {
	if len(ctx) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("	event.context := struct {\n")
	for _, f := range ctx {
		if f.Type.Kind == String {
			fmt.Fprintf(&b, "\t\tstring _%s;\n", f.Name)
		} else {
			fmt.Fprintf(&b, "\t\t%s _%s;\n", aliasOf(f.Type), f.Name)
		}
	}
	b.WriteString("\t};\n")
	return b.String()
}

// envStringKeys are environment entries that are always written as
// strings: Babeltrace reads them as strings.
var envStringKeys = map[string]bool{"hostname": true, "domain": true, "procname": true, "tracer_name": true, "trace_name": true}

// envIsInt reports whether env entry k = v is written as a TSDL integer:
// v is a canonical decimal int64 and k is not one of envStringKeys.
func envIsInt(k, v string) bool {
	if envStringKeys[k] {
		return false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return err == nil && strconv.FormatInt(n, 10) == v
}

// metadataPreamble returns the metadata text before the event blocks.
func metadataPreamble(info *TraceInfo) []byte {
	var b strings.Builder
	b.WriteString(metadataTop)
	b.WriteString("/* Written by github.com/tracemark/tracemark/ctf; append-only: event blocks follow. */\n\n")
	for _, a := range scalarAliases {
		fmt.Fprintf(&b, "typealias %s := %s;\n", a.decl, a.name)
	}
	for _, a := range meaningAliases {
		fmt.Fprintf(&b, "typealias %s := %s;\n", a.decl, a.name)
	}
	fmt.Fprintf(&b, `
trace {
	major = 1;
	minor = 8;
	uuid = "%s";
	byte_order = le;
	packet.header := struct {
		uint32_t magic;
		uint8_t uuid[16];
		uint32_t stream_id;
	};
};
`, uuidString(info.UUID))
	b.WriteString("\nenv {\n")
	keys := make([]string, 0, len(info.Env))
	for k := range info.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := info.Env[k]
		if envIsInt(k, v) {
			fmt.Fprintf(&b, "\t%s = %s;\n", k, v)
		} else {
			fmt.Fprintf(&b, "\t%s = %s;\n", k, tsdlString(v))
		}
	}
	b.WriteString("};\n")
	c := &info.Clock
	fmt.Fprintf(&b, `
clock {
	name = "%s";
	uuid = "%s";
	description = %s;
	freq = %d;
	precision = 0;
	offset_s = %d;
	offset = %d;
	absolute = FALSE;
};

typealias integer { size = 64; align = 8; signed = false; map = clock.%s.value; } := %s;

stream {
	id = %d;
	packet.context := struct {
		%[8]s timestamp_begin;
		%[8]s timestamp_end;
		uint64_t content_size;
		uint64_t packet_size;
		uint64_t packet_seq_num;
		uint64_t events_discarded;
		uint32_t cpu_id;
	};
	event.header := struct {
		uint16_t id;
		%[8]s timestamp;
	};
%[10]s};
`, c.Name, uuidString(c.UUID), tsdlString(c.Description), c.Frequency, c.OffsetSeconds, c.Offset,
		c.Name, clockAlias, streamClassID, contextDecl(info.EventContext))
	return []byte(b.String())
}

// eventBlock returns the TSDL event blocks of a validated class: one, or
// with a truncated twin two, the second declaring the records under
// TruncatedID, which end with the trailer.
func eventBlock(ec *EventClass) []byte {
	if !ec.Twin() {
		return eventDecl(ec, ec.ID, ec.Truncation, classNote{Span: ec.Span, Module: ec.Module})
	}
	b := eventDecl(ec, ec.ID, false, classNote{Span: ec.Span, Module: ec.Module})
	id := ec.ID
	return append(b, eventDecl(ec, ec.TruncatedID, true, classNote{TruncatedOf: &id})...)
}

// eventDecl returns one TSDL event block of class ec, declared with id
// and, if trailer, the _truncated trailer. Field names get a leading
// underscore, which TSDL readers strip, so that no field name can collide
// with a keyword; the writer's own fields (_<name>_len, _truncated) get
// two.
func eventDecl(ec *EventClass, id uint16, trailer bool, note classNote) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "\nevent {\n\tname = %s;\n\tid = %d;\n\tstream_id = %d;\n", tsdlString(ec.Name), id, streamClassID)
	if n := noteText(note); n != "" {
		b.WriteString("\t" + n + "\n")
	}
	b.WriteString("\tfields := struct {\n")
	for _, f := range ec.Fields {
		switch f.Type.Kind {
		case String:
			fmt.Fprintf(&b, "\t\tstring _%s;\n", f.Name)
		case Bytes:
			if f.Type.Bits > 0 {
				elem := meaningAlias(f.Meaning)
				if elem == "" {
					elem = "uint8_t"
				}
				fmt.Fprintf(&b, "\t\t%s _%s[%d];\n", elem, f.Name, f.Type.Bits/8)
				break
			}
			fmt.Fprintf(&b, "\t\tuint32_t __%s_len;\n\t\tuint8_t _%[1]s[__%[1]s_len];\n", f.Name)
		default:
			fmt.Fprintf(&b, "\t\t%s _%s;\n", typeName(f), f.Name)
		}
	}
	if trailer {
		b.WriteString("\t\tuint8_t __truncated;\n")
	}
	b.WriteString("\t};\n};\n")
	return []byte(b.String())
}

// parseUUID parses the canonical 8-4-4-4-12 hexadecimal form.
func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("malformed UUID %q", s)
	}
	hex := strings.ReplaceAll(s, "-", "")
	for i := range 16 {
		v, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		if err != nil {
			return u, fmt.Errorf("malformed UUID %q", s)
		}
		u[i] = byte(v)
	}
	return u, nil
}
