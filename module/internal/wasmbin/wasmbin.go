// Package wasmbin reads and writes the few parts of the WebAssembly binary
// format that tracemark needs without a full decoder: the section list,
// custom sections, and the type, import and export sections (to check a
// module's ABI before it is compiled). It also has a small module builder,
// used by tests to make hostile modules byte by byte.
//
// Everything here treats its input as hostile: lengths are checked against
// what remains before anything is sliced or allocated.
package wasmbin

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Header is the magic number and version 1 that start every module.
const Header = "\x00asm\x01\x00\x00\x00"

// Section ids of the core format.
const (
	SectionCustom   byte = 0
	SectionType     byte = 1
	SectionImport   byte = 2
	SectionFunction byte = 3
	SectionTable    byte = 4
	SectionMemory   byte = 5
	SectionGlobal   byte = 6
	SectionExport   byte = 7
	SectionStart    byte = 8
	SectionElement  byte = 9
	SectionCode     byte = 10
	SectionData     byte = 11
)

// Import and export kinds.
const (
	KindFunc   byte = 0
	KindTable  byte = 1
	KindMemory byte = 2
	KindGlobal byte = 3
	KindTag    byte = 4
)

// Value types.
const (
	I32 byte = 0x7f
	I64 byte = 0x7e
	F32 byte = 0x7d
	F64 byte = 0x7c
)

// ErrMalformed is wrapped by every error about bytes that are not a
// well-formed module.
var ErrMalformed = errors.New("malformed wasm")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Section is one section of a module, located in the module's bytes.
type Section struct {
	ID   byte
	Name string // custom sections only
	// Start and End delimit the whole section: id byte, size, (name,)
	// payload. Removing b[Start:End] removes the section.
	Start, End int
	// Payload is the section's content after the size (and, for custom
	// sections, after the name).
	Payload []byte
}

// Sections checks the header and splits b into sections. It does not
// decode their contents, except the names of custom sections.
func Sections(b []byte) ([]Section, error) {
	if len(b) < len(Header) || string(b[:4]) != Header[:4] {
		return nil, malformed("no wasm magic number")
	}
	if string(b[4:8]) != Header[4:8] {
		return nil, malformed("unsupported binary version %x", b[4:8])
	}
	var out []Section
	for off := len(Header); off < len(b); {
		start := off
		id := b[off]
		off++
		size, n, err := ReadU32(b[off:])
		if err != nil {
			return nil, fmt.Errorf("section at offset %d: %w", start, err)
		}
		off += n
		if uint64(size) > uint64(len(b)-off) {
			return nil, malformed("section %d at offset %d: size %d beyond end of file", id, start, size)
		}
		s := Section{ID: id, Start: start, End: off + int(size), Payload: b[off : off+int(size)]}
		if id == SectionCustom {
			name, rest, err := readName(s.Payload)
			if err != nil {
				return nil, fmt.Errorf("custom section at offset %d: %w", start, err)
			}
			s.Name, s.Payload = name, rest
		} else if id > 13 {
			return nil, malformed("unknown section id %d at offset %d", id, start)
		}
		out = append(out, s)
		off = s.End
	}
	return out, nil
}

// ReadU32 decodes an unsigned LEB128 number of at most 32 bits and returns
// it with the number of bytes read.
func ReadU32(b []byte) (uint32, int, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, malformed("truncated LEB128 number")
		}
		c := b[i]
		if i == 4 && c > 0x0f {
			return 0, 0, malformed("LEB128 number overflows 32 bits")
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, malformed("LEB128 number too long")
}

// AppendU32 appends v as unsigned LEB128.
func AppendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// AppendS64 appends v as signed LEB128 (the immediate of i32.const and
// i64.const).
func AppendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// AppendName appends a length-prefixed string.
func AppendName(b []byte, s string) []byte {
	b = AppendU32(b, uint32(len(s)))
	return append(b, s...)
}

// AppendSection appends a section with the given id and payload.
func AppendSection(b []byte, id byte, payload []byte) []byte {
	b = append(b, id)
	b = AppendU32(b, uint32(len(payload)))
	return append(b, payload...)
}

// AppendCustom appends a custom section.
func AppendCustom(b []byte, name string, payload []byte) []byte {
	p := AppendName(nil, name)
	p = append(p, payload...)
	return AppendSection(b, SectionCustom, p)
}

// reader walks a section payload.
type reader struct {
	b   []byte
	off int
}

func (r *reader) u32() (uint32, error) {
	v, n, err := ReadU32(r.b[r.off:])
	r.off += n
	return v, err
}

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, malformed("unexpected end of section")
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) name() (string, error) {
	s, rest, err := readName(r.b[r.off:])
	r.off = len(r.b) - len(rest)
	return s, err
}

// count reads a vector length and checks that at least min bytes per
// element remain, so that a hostile count cannot make us allocate.
func (r *reader) count(min int) (int, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(min) > uint64(len(r.b)-r.off) {
		return 0, malformed("vector of %d elements beyond end of section", n)
	}
	return int(n), nil
}

func (r *reader) end() error {
	if r.off != len(r.b) {
		return malformed("%d unexpected bytes at end of section", len(r.b)-r.off)
	}
	return nil
}

func readName(b []byte) (string, []byte, error) {
	n, k, err := ReadU32(b)
	if err != nil {
		return "", nil, err
	}
	b = b[k:]
	if uint64(n) > uint64(len(b)) {
		return "", nil, malformed("name of %d bytes beyond end of section", n)
	}
	s := string(b[:n])
	if !utf8.ValidString(s) {
		return "", nil, malformed("name is not valid UTF-8")
	}
	return s, b[n:], nil
}

// FuncType is a function signature.
type FuncType struct {
	Params, Results []byte
}

// String renders the signature as "(i32, i32) -> i64".
func (t FuncType) String() string {
	return "(" + typeList(t.Params) + ") -> (" + typeList(t.Results) + ")"
}

// Equal reports whether two signatures are the same.
func (t FuncType) Equal(u FuncType) bool {
	return string(t.Params) == string(u.Params) && string(t.Results) == string(u.Results)
}

func typeList(ts []byte) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += TypeName(t)
	}
	return s
}

// TypeName returns "i32", "i64", "f32", "f64" or a hex code.
func TypeName(t byte) string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32:
		return "f32"
	case F64:
		return "f64"
	case 0x7b:
		return "v128"
	case 0x70:
		return "funcref"
	case 0x6f:
		return "externref"
	}
	return fmt.Sprintf("0x%02x", t)
}

// Types decodes a type section payload.
func Types(p []byte) ([]FuncType, error) {
	r := &reader{b: p}
	n, err := r.count(3)
	if err != nil {
		return nil, err
	}
	out := make([]FuncType, 0, n)
	for range n {
		form, err := r.byte()
		if err != nil {
			return nil, err
		}
		if form != 0x60 {
			return nil, malformed("type form 0x%02x is not a function type", form)
		}
		var t FuncType
		for _, dst := range []*[]byte{&t.Params, &t.Results} {
			k, err := r.count(1)
			if err != nil {
				return nil, err
			}
			*dst = append([]byte(nil), r.b[r.off:r.off+k]...)
			r.off += k
		}
		out = append(out, t)
	}
	return out, r.end()
}

// Import is one entry of the import section.
type Import struct {
	Module, Name string
	Kind         byte
	// Type is the type index of a function import.
	Type uint32
}

// Imports decodes an import section payload.
func Imports(p []byte) ([]Import, error) {
	r := &reader{b: p}
	n, err := r.count(4)
	if err != nil {
		return nil, err
	}
	out := make([]Import, 0, n)
	for range n {
		var im Import
		if im.Module, err = r.name(); err != nil {
			return nil, err
		}
		if im.Name, err = r.name(); err != nil {
			return nil, err
		}
		if im.Kind, err = r.byte(); err != nil {
			return nil, err
		}
		switch im.Kind {
		case KindFunc:
			im.Type, err = r.u32()
		case KindTable:
			if _, err = r.byte(); err == nil {
				err = r.limits()
			}
		case KindMemory:
			err = r.limits()
		case KindGlobal:
			if _, err = r.byte(); err == nil {
				_, err = r.byte()
			}
		case KindTag:
			if _, err = r.byte(); err == nil {
				_, err = r.u32()
			}
		default:
			err = malformed("import %s.%s has unknown kind %d", im.Module, im.Name, im.Kind)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, r.end()
}

func (r *reader) limits() error {
	_, _, _, err := r.limitValues()
	return err
}

func (r *reader) limitValues() (min, max uint32, hasMax bool, err error) {
	flag, err := r.byte()
	if err != nil {
		return 0, 0, false, err
	}
	if min, err = r.u32(); err != nil {
		return 0, 0, false, err
	}
	if flag&1 != 0 {
		max, err = r.u32()
		hasMax = true
	}
	return min, max, hasMax, err
}

// Limits are the size limits of a memory, in 64 KiB pages.
type Limits struct {
	Min, Max uint32
	HasMax   bool
}

// Memories decodes a memory section payload.
func Memories(p []byte) ([]Limits, error) {
	r := &reader{b: p}
	n, err := r.count(2)
	if err != nil {
		return nil, err
	}
	out := make([]Limits, 0, n)
	for range n {
		var l Limits
		if l.Min, l.Max, l.HasMax, err = r.limitValues(); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, r.end()
}

// Export is one entry of the export section.
type Export struct {
	Name  string
	Kind  byte
	Index uint32
}

// Exports decodes an export section payload.
func Exports(p []byte) ([]Export, error) {
	r := &reader{b: p}
	n, err := r.count(3)
	if err != nil {
		return nil, err
	}
	out := make([]Export, 0, n)
	for range n {
		var e Export
		if e.Name, err = r.name(); err != nil {
			return nil, err
		}
		if e.Kind, err = r.byte(); err != nil {
			return nil, err
		}
		if e.Index, err = r.u32(); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, r.end()
}
