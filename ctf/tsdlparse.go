package ctf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// This file parses the TSDL subset that metadataPreamble and eventBlock
// produce. It is a real tokenizer and recursive-descent parser (comments,
// whitespace and declaration order are free), but it accepts only the
// types and layouts of this package's format and rejects anything else
// with an error naming the metadata line.

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokIdent
	tokNumber
	tokString
	tokPunct // { } ; = := [ ] . , -
	tokNote  // a comment starting with notePrefix: its JSON text
)

type token struct {
	kind tokKind
	text string // identifier, number digits, unescaped string, or punctuation
	line int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of metadata"
	case tokString:
		return strconv.Quote(t.text)
	}
	return "\"" + t.text + "\""
}

type metaError struct {
	line int
	msg  string
}

func (e *metaError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

func merr(line int, format string, args ...any) *metaError {
	return &metaError{line: line, msg: fmt.Sprintf(format, args...)}
}

func tokenize(src string) ([]token, error) {
	var toks []token
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, merr(line, "unterminated comment")
			}
			if strings.HasPrefix(src[i:], notePrefix) {
				toks = append(toks, token{tokNote, src[i+len(notePrefix) : i+2+end], line})
			}
			line += strings.Count(src[i:i+2+end], "\n")
			i += end + 4
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(src) && (src[j] == '_' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, token{tokIdent, src[i:j], line})
			i = j
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z') {
				j++
			}
			toks = append(toks, token{tokNumber, src[i:j], line})
			i = j
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; ; j++ {
				if j >= len(src) {
					return nil, merr(line, "unterminated string literal")
				}
				if src[j] == '"' {
					break
				}
				if src[j] == '\n' {
					line++
				}
				if src[j] == '\\' {
					j++
					if j >= len(src) {
						return nil, merr(line, "unterminated string literal")
					}
					switch src[j] {
					case '\\', '"', '\'', '?':
						b.WriteByte(src[j])
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					default:
						return nil, merr(line, "unsupported escape sequence \\%c in string literal", src[j])
					}
					continue
				}
				b.WriteByte(src[j])
			}
			toks = append(toks, token{tokString, b.String(), line})
			i = j + 1
		case c == ':' && i+1 < len(src) && src[i+1] == '=':
			toks = append(toks, token{tokPunct, ":=", line})
			i += 2
		case strings.IndexByte("{};=[].,-", c) >= 0:
			toks = append(toks, token{tokPunct, string(c), line})
			i++
		default:
			return nil, merr(line, "unexpected character %q", c)
		}
	}
	toks = append(toks, token{kind: tokEOF, line: line})
	return toks, nil
}

// tsdl AST.

type typeKind uint8

const (
	tInteger typeKind = iota + 1
	tFloat
	tString
	tStruct
)

type tsdlType struct {
	kind    typeKind
	size    int // integer bits
	align   int
	signed  bool
	mapped  string  // integer: clock name of "map = clock.<name>.value"
	meaning Meaning // the type was declared as one of meaningAliases
	expDig  int
	mantDig int
	fields  []tsdlField // struct
	line    int
}

type tsdlField struct {
	typ    *tsdlType
	name   string
	arrLen string // "" if not an array; a number or the name of a length field
	line   int
}

// tsdlValue is the right-hand side of an attribute.
type tsdlValue struct {
	text  string // identifier path ("clock.x.value"), number ("-5") or string
	isStr bool
	typ   *tsdlType // for ":=" attributes
	line  int
}

type tsdlBlock struct {
	kind  string
	attrs map[string]tsdlValue
	notes []token // tracemark notes within the block
	line  int
}

type parser struct {
	toks    []token
	pos     int
	aliases map[string]*tsdlType
	depth   int     // struct nesting
	notes   []token // notes passed over, wherever they were
}

// maxStructDepth bounds struct nesting (the format has none) so that
// hostile metadata cannot exhaust the stack.
const maxStructDepth = 8

// skipNotes moves past notes, collecting them: a note is a comment, so it
// may be anywhere, and only blocks look at the notes within them.
func (p *parser) skipNotes() {
	for p.toks[p.pos].kind == tokNote {
		p.notes = append(p.notes, p.toks[p.pos])
		p.pos++
	}
}

func (p *parser) peek() token { p.skipNotes(); return p.toks[p.pos] }

func (p *parser) next() token {
	p.skipNotes()
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) expect(text string) error {
	t := p.next()
	if (t.kind != tokPunct && t.kind != tokIdent) || t.text != text {
		return merr(t.line, "expected %q, found %s", text, t)
	}
	return nil
}

func (p *parser) ident() (token, error) {
	t := p.next()
	if t.kind != tokIdent {
		return t, merr(t.line, "expected an identifier, found %s", t)
	}
	return t, nil
}

// parseTSDL parses the whole metadata into type aliases and blocks.
func parseTSDL(src string) ([]*tsdlBlock, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, aliases: map[string]*tsdlType{}}
	var blocks []*tsdlBlock
	for p.peek().kind != tokEOF {
		t, err := p.ident()
		if err != nil {
			return nil, err
		}
		switch t.text {
		case "typealias":
			typ, err := p.parseType()
			if err != nil {
				return nil, err
			}
			if err := p.expect(":="); err != nil {
				return nil, err
			}
			name, err := p.ident()
			if err != nil {
				return nil, err
			}
			for _, a := range meaningAliases {
				if a.name == name.text {
					t := *typ
					t.meaning = a.meaning
					typ = &t
				}
			}
			p.aliases[name.text] = typ
		case "trace", "env", "clock", "stream", "event":
			b, err := p.parseBlock(t)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, b)
		default:
			return nil, merr(t.line, "unsupported top-level declaration %s", t)
		}
		if err := p.expect(";"); err != nil {
			return nil, err
		}
	}
	return blocks, nil
}

func (p *parser) parseBlock(kw token) (*tsdlBlock, error) {
	b := &tsdlBlock{kind: kw.text, attrs: map[string]tsdlValue{}, line: kw.line}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	first := len(p.notes)
	for {
		t := p.peek()
		if t.kind == tokPunct && t.text == "}" {
			b.notes = p.notes[first:]
			p.next()
			return b, nil
		}
		key, err := p.path()
		if err != nil {
			return nil, err
		}
		op := p.next()
		var v tsdlValue
		switch {
		case op.kind == tokPunct && op.text == "=":
			v, err = p.value()
		case op.kind == tokPunct && op.text == ":=":
			v.line = op.line
			v.typ, err = p.parseType()
		default:
			err = merr(op.line, "expected \"=\" or \":=\" after %q, found %s", key, op)
		}
		if err != nil {
			return nil, err
		}
		if _, dup := b.attrs[key]; dup {
			return nil, merr(t.line, "duplicate attribute %q in %s block", key, b.kind)
		}
		b.attrs[key] = v
		if err := p.expect(";"); err != nil {
			return nil, err
		}
	}
}

// path parses identifiers joined by dots.
func (p *parser) path() (string, error) {
	t, err := p.ident()
	if err != nil {
		return "", err
	}
	s := t.text
	for p.peek().kind == tokPunct && p.peek().text == "." {
		p.next()
		t, err := p.ident()
		if err != nil {
			return "", err
		}
		s += "." + t.text
	}
	return s, nil
}

func (p *parser) value() (tsdlValue, error) {
	t := p.peek()
	switch {
	case t.kind == tokString:
		p.next()
		return tsdlValue{text: t.text, isStr: true, line: t.line}, nil
	case t.kind == tokNumber:
		p.next()
		return tsdlValue{text: t.text, line: t.line}, nil
	case t.kind == tokPunct && t.text == "-":
		p.next()
		n := p.next()
		if n.kind != tokNumber {
			return tsdlValue{}, merr(n.line, "expected a number after \"-\", found %s", n)
		}
		return tsdlValue{text: "-" + n.text, line: t.line}, nil
	case t.kind == tokIdent:
		s, err := p.path()
		return tsdlValue{text: s, line: t.line}, err
	}
	return tsdlValue{}, merr(t.line, "expected a value, found %s", t)
}

func (p *parser) parseType() (*tsdlType, error) {
	t, err := p.ident()
	if err != nil {
		return nil, err
	}
	switch t.text {
	case "integer", "floating_point":
		typ := &tsdlType{kind: tInteger, line: t.line}
		if t.text == "floating_point" {
			typ.kind = tFloat
		}
		if err := p.expect("{"); err != nil {
			return nil, err
		}
		for !(p.peek().kind == tokPunct && p.peek().text == "}") {
			key, err := p.ident()
			if err != nil {
				return nil, err
			}
			if err := p.expect("="); err != nil {
				return nil, err
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			if err := typ.setAttr(key.text, v); err != nil {
				return nil, err
			}
			if err := p.expect(";"); err != nil {
				return nil, err
			}
		}
		p.next()
		if typ.align != 8 {
			return nil, merr(t.line, "%s with align = %d: only byte-aligned types (align = 8) are supported", t.text, typ.align)
		}
		if typ.kind == tInteger && typ.size != 8 && typ.size != 16 && typ.size != 32 && typ.size != 64 {
			return nil, merr(t.line, "integer of %d bits: only 8, 16, 32 and 64 are supported", typ.size)
		}
		if typ.kind == tFloat && !(typ.expDig == 8 && typ.mantDig == 24) && !(typ.expDig == 11 && typ.mantDig == 53) {
			return nil, merr(t.line, "floating_point with exp_dig = %d, mant_dig = %d: only binary32 and binary64 are supported", typ.expDig, typ.mantDig)
		}
		return typ, nil
	case "string":
		typ := &tsdlType{kind: tString, line: t.line}
		if p.peek().kind == tokPunct && p.peek().text == "{" {
			p.next()
			for !(p.peek().kind == tokPunct && p.peek().text == "}") {
				key, err := p.ident()
				if err != nil {
					return nil, err
				}
				if err := p.expect("="); err != nil {
					return nil, err
				}
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				if key.text != "encoding" || (v.text != "UTF8" && v.text != "ASCII") {
					return nil, merr(key.line, "unsupported string attribute %s = %s", key.text, v.text)
				}
				if err := p.expect(";"); err != nil {
					return nil, err
				}
			}
			p.next()
		}
		return typ, nil
	case "struct":
		typ := &tsdlType{kind: tStruct, line: t.line}
		if p.depth++; p.depth > maxStructDepth {
			return nil, merr(t.line, "structs nested more than %d deep", maxStructDepth)
		}
		defer func() { p.depth-- }()
		if err := p.expect("{"); err != nil {
			return nil, err
		}
		for !(p.peek().kind == tokPunct && p.peek().text == "}") {
			ft, err := p.parseType()
			if err != nil {
				return nil, err
			}
			name, err := p.ident()
			if err != nil {
				return nil, err
			}
			f := tsdlField{typ: ft, name: name.text, line: name.line}
			if p.peek().kind == tokPunct && p.peek().text == "[" {
				p.next()
				n := p.next()
				if n.kind != tokNumber && n.kind != tokIdent {
					return nil, merr(n.line, "expected an array length, found %s", n)
				}
				f.arrLen = n.text
				if err := p.expect("]"); err != nil {
					return nil, err
				}
			}
			if err := p.expect(";"); err != nil {
				return nil, err
			}
			typ.fields = append(typ.fields, f)
		}
		p.next()
		return typ, nil
	}
	if a := p.aliases[t.text]; a != nil {
		return a, nil
	}
	return nil, merr(t.line, "unknown type %s", t)
}

func (typ *tsdlType) setAttr(key string, v tsdlValue) error {
	num := func() (int, error) {
		n, err := strconv.Atoi(v.text)
		if err != nil || n < 0 || n > 1024 || v.isStr {
			return 0, merr(v.line, "invalid %s = %s", key, v.text)
		}
		return n, nil
	}
	var err error
	switch {
	case key == "align":
		typ.align, err = num()
	case key == "byte_order":
		if v.text != "le" && v.text != "native" && v.text != "little_endian" {
			err = merr(v.line, "unsupported byte_order = %s: only little-endian is supported", v.text)
		}
	case typ.kind == tInteger && key == "size":
		typ.size, err = num()
	case typ.kind == tInteger && key == "signed":
		switch v.text {
		case "true", "TRUE", "1":
			typ.signed = true
		case "false", "FALSE", "0":
			typ.signed = false
		default:
			err = merr(v.line, "invalid signed = %s", v.text)
		}
	case typ.kind == tInteger && key == "base":
		// Display only.
	case typ.kind == tInteger && key == "encoding":
		if v.text != "none" {
			err = merr(v.line, "unsupported integer encoding = %s", v.text)
		}
	case typ.kind == tInteger && key == "map":
		rest, ok := strings.CutPrefix(v.text, "clock.")
		name, ok2 := strings.CutSuffix(rest, ".value")
		if !ok || !ok2 || !isIdent(name) {
			err = merr(v.line, "unsupported map = %s", v.text)
		}
		typ.mapped = name
	case typ.kind == tFloat && key == "exp_dig":
		typ.expDig, err = num()
	case typ.kind == tFloat && key == "mant_dig":
		typ.mantDig, err = num()
	default:
		err = merr(v.line, "unsupported attribute %s", key)
	}
	return err
}

// fieldType returns the FieldType of a scalar TSDL type.
func (typ *tsdlType) fieldType() (FieldType, bool) {
	switch typ.kind {
	case tInteger:
		if typ.mapped != "" {
			return FieldType{}, false
		}
		if typ.signed {
			return FieldType{Int, typ.size}, true
		}
		return FieldType{Uint, typ.size}, true
	case tFloat:
		if typ.mantDig == 24 {
			return FieldType{Float, 32}, true
		}
		return FieldType{Float, 64}, true
	case tString:
		return FieldType{Kind: String}, true
	}
	return FieldType{}, false
}

// layoutField is one field of a fixed layout: a scalar type or, with
// mapped set, a clock-mapped uint64.
type layoutField struct {
	name   string
	typ    FieldType
	mapped bool
	arrLen string
}

var (
	packetHeaderLayout = []layoutField{
		{name: "magic", typ: FieldType{Uint, 32}},
		{name: "uuid", typ: FieldType{Uint, 8}, arrLen: "16"},
		{name: "stream_id", typ: FieldType{Uint, 32}},
	}
	packetContextLayout = []layoutField{
		{name: "timestamp_begin", typ: FieldType{Uint, 64}, mapped: true},
		{name: "timestamp_end", typ: FieldType{Uint, 64}, mapped: true},
		{name: "content_size", typ: FieldType{Uint, 64}},
		{name: "packet_size", typ: FieldType{Uint, 64}},
		{name: "packet_seq_num", typ: FieldType{Uint, 64}},
		{name: "events_discarded", typ: FieldType{Uint, 64}},
		{name: "cpu_id", typ: FieldType{Uint, 32}},
	}
	eventHeaderLayout = []layoutField{
		{name: "id", typ: FieldType{Uint, 16}},
		{name: "timestamp", typ: FieldType{Uint, 64}, mapped: true},
	}
)

// checkLayout verifies that a struct type has exactly the given fields.
func checkLayout(what string, v tsdlValue, want []layoutField, clock string) error {
	if v.typ == nil || v.typ.kind != tStruct {
		return merr(v.line, "%s must be a struct", what)
	}
	got := v.typ.fields
	if len(got) != len(want) {
		return merr(v.line, "%s has %d fields, this format has %d", what, len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		ok := g.name == w.name && g.arrLen == w.arrLen && g.typ.kind == tInteger && g.typ.size == w.typ.Bits &&
			g.typ.signed == (w.typ.Kind == Int)
		if w.mapped {
			ok = ok && g.typ.mapped == clock
		} else {
			ok = ok && g.typ.mapped == ""
		}
		if !ok {
			return merr(g.line, "%s field %d is %q, expected %s %s as in this package's format", what, i, g.name, w.typ, w.name)
		}
	}
	return nil
}

// parsedMetadata is what Open learns from the metadata file.
type parsedMetadata struct {
	info    TraceInfo
	classes []*EventClass // ordered by ID
	// warnings are the tracemark notes that were ignored because they
	// could not be read: the trace reads as Babeltrace reads it, without
	// them (see Reader.Warnings).
	warnings []string
}

// warn records a tracemark note that the reader ignores.
func (md *parsedMetadata) warn(line int, format string, args ...any) {
	md.warnings = append(md.warnings, merr(line, "ignored tracemark note: "+format, args...).Error())
}

func (b *tsdlBlock) str(key string, required bool) (string, bool, error) {
	v, ok := b.attrs[key]
	if !ok {
		if required {
			return "", false, merr(b.line, "%s block has no %s", b.kind, key)
		}
		return "", false, nil
	}
	if !v.isStr || v.typ != nil {
		return "", false, merr(v.line, "%s.%s must be a string", b.kind, key)
	}
	return v.text, true, nil
}

func (b *tsdlBlock) uint(key string, required bool, maxVal uint64) (uint64, bool, error) {
	v, ok := b.attrs[key]
	if !ok {
		if required {
			return 0, false, merr(b.line, "%s block has no %s", b.kind, key)
		}
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v.text, 10, 64)
	if err != nil || v.isStr || n > maxVal {
		return 0, false, merr(v.line, "invalid %s.%s = %s", b.kind, key, v.text)
	}
	return n, true, nil
}

func (b *tsdlBlock) allowOnly(keys ...string) error {
	for k, v := range b.attrs {
		if !slices.Contains(keys, k) {
			return merr(v.line, "unsupported attribute %s in %s block", k, b.kind)
		}
	}
	return nil
}

// parseMetadata interprets metadata text written by Writer.
func parseMetadata(src string) (*parsedMetadata, error) {
	if !strings.HasPrefix(src, "/* CTF 1.8") {
		return nil, merr(1, "not CTF 1.8 text metadata (must start with \"/* CTF 1.8\")")
	}
	blocks, err := parseTSDL(src)
	if err != nil {
		return nil, err
	}
	md := &parsedMetadata{info: TraceInfo{Env: map[string]string{}}}
	var trace, clock, stream *tsdlBlock
	var events []*tsdlBlock
	for _, b := range blocks {
		switch b.kind {
		case "trace", "clock", "stream":
			dst := map[string]**tsdlBlock{"trace": &trace, "clock": &clock, "stream": &stream}[b.kind]
			if *dst != nil {
				return nil, merr(b.line, "second %s block: only one is supported", b.kind)
			}
			*dst = b
		case "env":
			for k, v := range b.attrs {
				if v.typ != nil {
					return nil, merr(v.line, "env.%s must be a value", k)
				}
				md.info.Env[k] = v.text
			}
		case "event":
			events = append(events, b)
		}
	}
	for _, need := range []struct {
		b    *tsdlBlock
		name string
	}{{trace, "trace"}, {clock, "clock"}, {stream, "stream"}} {
		if need.b == nil {
			return nil, merr(1, "no %s block", need.name)
		}
	}
	// clock
	if err := clock.allowOnly("name", "uuid", "description", "freq", "precision", "offset_s", "offset", "absolute"); err != nil {
		return nil, err
	}
	c := &md.info.Clock
	if v, ok := clock.attrs["name"]; ok && v.typ == nil && isIdent(v.text) {
		c.Name = v.text
	} else {
		return nil, merr(clock.line, "clock block needs a name that is an identifier")
	}
	if s, ok, err := clock.str("uuid", false); err != nil {
		return nil, err
	} else if ok {
		if c.UUID, err = parseUUID(s); err != nil {
			return nil, merr(clock.attrs["uuid"].line, "clock uuid: %v", err)
		}
	}
	if c.Description, _, err = clock.str("description", false); err != nil {
		return nil, err
	}
	if c.Frequency, _, err = clock.uint("freq", true, 1<<63); err != nil {
		return nil, err
	}
	if c.Frequency == 0 {
		return nil, merr(clock.attrs["freq"].line, "clock frequency 0")
	}
	if c.Offset, _, err = clock.uint("offset", false, 1<<64-1); err != nil {
		return nil, err
	}
	if v, ok := clock.attrs["offset_s"]; ok {
		if c.OffsetSeconds, err = strconv.ParseInt(v.text, 10, 64); err != nil || v.isStr {
			return nil, merr(v.line, "invalid clock.offset_s = %s", v.text)
		}
	}
	// trace
	if err := trace.allowOnly("major", "minor", "uuid", "byte_order", "packet.header"); err != nil {
		return nil, err
	}
	if major, _, err := trace.uint("major", true, 1<<32); err != nil {
		return nil, err
	} else if minor, _, err := trace.uint("minor", true, 1<<32); err != nil {
		return nil, err
	} else if major != 1 || minor != 8 {
		return nil, merr(trace.line, "trace version %d.%d, only 1.8 is supported", major, minor)
	}
	if v := trace.attrs["byte_order"]; v.text != "le" {
		return nil, merr(trace.line, "trace byte_order must be le")
	}
	s, _, err := trace.str("uuid", true)
	if err != nil {
		return nil, err
	}
	if md.info.UUID, err = parseUUID(s); err != nil {
		return nil, merr(trace.attrs["uuid"].line, "trace uuid: %v", err)
	}
	if err := checkLayout("trace packet.header", trace.attrs["packet.header"], packetHeaderLayout, c.Name); err != nil {
		return nil, err
	}
	// stream
	if err := stream.allowOnly("id", "packet.context", "event.header", "event.context"); err != nil {
		return nil, err
	}
	if id, _, err := stream.uint("id", false, 1<<64-1); err != nil {
		return nil, err
	} else if id != streamClassID {
		return nil, merr(stream.line, "stream id %d, this format has a single stream class %d", id, streamClassID)
	}
	if err := checkLayout("stream packet.context", stream.attrs["packet.context"], packetContextLayout, c.Name); err != nil {
		return nil, err
	}
	if err := checkLayout("stream event.header", stream.attrs["event.header"], eventHeaderLayout, c.Name); err != nil {
		return nil, err
	}
	if cv, ok := stream.attrs["event.context"]; ok {
		ec, _, err := eventClassFromBlock(&tsdlBlock{line: cv.line, attrs: map[string]tsdlValue{
			"name": {text: "event.context", line: cv.line, isStr: true}, "id": {text: "0", line: cv.line}, "fields": cv}, kind: "stream"}, md)
		if err != nil {
			return nil, err
		}
		if ec.Truncation {
			return nil, merr(cv.line, "stream event.context has no truncation trailer")
		}
		if err := validateContext(ec.Fields); err != nil {
			return nil, merr(cv.line, "stream %v", err)
		}
		md.info.EventContext = ec.Fields
	}
	// events
	byID := map[uint16]*EventClass{}
	var decls []declaredClass
	for _, b := range events {
		ec, twinOf, err := eventClassFromBlock(b, md)
		if err != nil {
			return nil, err
		}
		if old := byID[ec.ID]; old != nil {
			return nil, merr(b.line, "event id %d declared twice (%q and %q)", ec.ID, old.Name, ec.Name)
		}
		byID[ec.ID] = ec
		decls = append(decls, declaredClass{ec: ec, twinOf: twinOf, line: b.line})
	}
	md.classes = mergeTwins(decls, md)
	slices.SortFunc(md.classes, func(a, b *EventClass) int { return int(a.ID) - int(b.ID) })
	return md, nil
}

// eventClassFromBlock returns the class an event block declares and, if
// the block declares the truncated records of another class, its id
// (else -1). Notes it cannot use are ignored with a warning in md.
func eventClassFromBlock(b *tsdlBlock, md *parsedMetadata) (*EventClass, int, error) {
	if err := b.allowOnly("name", "id", "stream_id", "fields"); err != nil {
		return nil, -1, err
	}
	ec := &EventClass{}
	var err error
	if ec.Name, _, err = b.str("name", true); err != nil {
		return nil, -1, err
	}
	id, _, err := b.uint("id", true, 1<<16-1)
	if err != nil {
		return nil, -1, err
	}
	ec.ID = uint16(id)
	if sid, _, err := b.uint("stream_id", false, 1<<64-1); err != nil {
		return nil, -1, err
	} else if sid != streamClassID {
		return nil, -1, merr(b.line, "event %q has stream_id %d, this format has a single stream class %d", ec.Name, sid, streamClassID)
	}
	fv, ok := b.attrs["fields"]
	if ok && (fv.typ == nil || fv.typ.kind != tStruct) {
		return nil, -1, merr(fv.line, "event %q fields must be a struct", ec.Name)
	}
	var fs []tsdlField // none: no payload
	if ok {
		fs = fv.typ.fields
	}
	for i := 0; i < len(fs); i++ {
		f := fs[i]
		bad := func(why string) error {
			return merr(f.line, "event %q field %q: %s", ec.Name, f.name, why)
		}
		if i == len(fs)-1 && f.name == "__truncated" {
			if ft, ok := f.typ.fieldType(); !ok || ft != (FieldType{Uint, 8}) || f.arrLen != "" {
				return nil, -1, bad("the truncation trailer must be a uint8")
			}
			ec.Truncation = true
			continue
		}
		if strings.HasPrefix(f.name, "__") && strings.HasSuffix(f.name, "_len") {
			// Bytes field: uint32 __<name>_len; uint8 _<name>[__<name>_len];
			name := f.name[2 : len(f.name)-4]
			if ft, ok := f.typ.fieldType(); !ok || ft != (FieldType{Uint, 32}) || f.arrLen != "" {
				return nil, -1, bad("a sequence length must be a uint32")
			}
			if i+1 >= len(fs) || fs[i+1].name != "_"+name || fs[i+1].arrLen != f.name {
				return nil, -1, bad("a sequence length must be followed by its sequence _" + name + "[" + f.name + "]")
			}
			if ft, ok := fs[i+1].typ.fieldType(); !ok || ft != (FieldType{Uint, 8}) {
				return nil, -1, bad("sequences must have uint8 elements")
			}
			ec.Fields = append(ec.Fields, Field{Name: name, Type: FieldType{Kind: Bytes}})
			i++
			continue
		}
		name, ok := strings.CutPrefix(f.name, "_")
		if f.arrLen != "" {
			// Fixed-size Bytes field: uint8 _<name>[N];
			n, err := strconv.Atoi(f.arrLen)
			if ft, isInt := f.typ.fieldType(); err != nil || !isInt || ft != (FieldType{Uint, 8}) || !ok || n <= 0 || n > MaxFixedBytes {
				return nil, -1, bad("arrays are only supported as bytes sequences and as uint8 arrays of 1 to 256 elements")
			}
			ec.Fields = append(ec.Fields, Field{Name: name, Type: FieldType{Kind: Bytes, Bits: 8 * n}, Meaning: f.typ.meaning})
			continue
		}
		if !ok {
			return nil, -1, bad("field names must start with an underscore")
		}
		ft, ok := f.typ.fieldType()
		if !ok {
			return nil, -1, bad("unsupported field type")
		}
		ec.Fields = append(ec.Fields, Field{Name: name, Type: ft, Meaning: f.typ.meaning})
	}
	if ec.Truncation {
		ec.TruncatedID = ec.ID
	}
	twinOf := -1
	for _, n := range b.notes {
		of, err := parseNote(n.text, ec)
		if err != nil {
			md.warn(n.line, "event %q: %v", ec.Name, err)
			continue
		}
		if of >= 0 { // a later note without truncated_of keeps it
			twinOf = of
		}
	}
	if ec.Module != "" {
		if err := checkText("module", ec.Module); err != nil {
			md.warn(b.line, "event %q: %v: module dropped", ec.Name, err)
			ec.Module = ""
		}
	}
	if err := ec.Validate(); err != nil && ec.Span != nil {
		// A span a note declares is an addition to what TSDL says; one
		// that does not fit the class is dropped, not the trace.
		span := ec.Span
		if ec.Span = nil; ec.Validate() == nil {
			md.warn(b.line, "event %q: span %+v does not fit the class: %v", ec.Name, *span, err)
		}
	}
	if err := ec.Validate(); err != nil {
		return nil, -1, merr(b.line, "%v", err)
	}
	return ec, twinOf, nil
}
