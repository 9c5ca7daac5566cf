package wasmbin

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestLEB128(t *testing.T) {
	for _, v := range []uint32{0, 1, 127, 128, 300, 1<<21 - 1, 1 << 28, 1<<32 - 1} {
		b := AppendU32(nil, v)
		got, n, err := ReadU32(b)
		if err != nil || got != v || n != len(b) {
			t.Errorf("%d: %x -> %d %d %v", v, b, got, n, err)
		}
	}
	for _, b := range [][]byte{nil, {0x80}, {0xff, 0xff, 0xff, 0xff, 0x10}, {0x80, 0x80, 0x80, 0x80, 0x80, 0x00}} {
		if _, _, err := ReadU32(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v", b, err)
		}
	}
	for _, tt := range []struct {
		v    int64
		want string
	}{{0, "\x00"}, {-1, "\x7f"}, {63, "\x3f"}, {64, "\xc0\x00"}, {-64, "\x40"}, {-65, "\xbf\x7f"}} {
		if got := string(AppendS64(nil, tt.v)); got != tt.want {
			t.Errorf("AppendS64(%d) = %x, want %x", tt.v, got, tt.want)
		}
	}
}

func TestSections(t *testing.T) {
	b := NewBuilder()
	b.Memory(1, 2)
	b.Export("f", b.Func(Sig(nil), nil))
	b.Custom("hello", []byte("world"))
	wasm := b.Bytes()
	secs, err := Sections(wasm)
	if err != nil {
		t.Fatal(err)
	}
	last := secs[len(secs)-1]
	if last.ID != SectionCustom || last.Name != "hello" || string(last.Payload) != "world" || last.End != len(wasm) {
		t.Errorf("custom section %+v", last)
	}
	tests := []struct {
		name string
		b    string
		want string
	}{
		{"empty", "", "no wasm magic"},
		{"elf", "\x7fELF\x01\x00\x00\x00", "no wasm magic"},
		{"version 2", "\x00asm\x02\x00\x00\x00", "unsupported binary version"},
		{"size beyond end", Header + "\x01\x10\x00", "beyond end of file"},
		{"truncated size", Header + "\x01\x80", "truncated LEB128"},
		{"unknown id", Header + "\x20\x00", "unknown section id 32"},
		{"custom name beyond", Header + "\x00\x02\x05a", "name of 5 bytes beyond end"},
		{"custom name UTF-8", Header + "\x00\x02\x01\xff", "not valid UTF-8"},
	}
	for _, tt := range tests {
		if _, err := Sections([]byte(tt.b)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestDecodeSections(t *testing.T) {
	b := NewBuilder()
	f := b.ImportFunc("env", "f", Sig([]byte{I32, I64}, F64))
	b.Memory(1, 0)
	b.Export("g", b.Func(Sig(nil, I32), nil, I32Const(1)))
	b.Export("h", f)
	secs, _ := Sections(b.Bytes())
	var types []FuncType
	var imports []Import
	var exports []Export
	var err error
	for _, s := range secs {
		switch s.ID {
		case SectionType:
			types, err = Types(s.Payload)
		case SectionImport:
			imports, err = Imports(s.Payload)
		case SectionExport:
			exports, err = Exports(s.Payload)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(types) != 2 || types[0].String() != "(i32, i64) -> (f64)" || types[1].String() != "() -> (i32)" {
		t.Errorf("types %v", types)
	}
	if len(imports) != 1 || imports[0] != (Import{Module: "env", Name: "f", Kind: KindFunc, Type: 0}) {
		t.Errorf("imports %+v", imports)
	}
	if len(exports) != 3 || exports[1].Name != "g" || exports[2].Index != 0 {
		t.Errorf("exports %+v", exports)
	}
	// Hostile counts do not make the decoder allocate or read past the end.
	for _, p := range []string{"\xff\xff\xff\xff\x0f", "\x01\x60\xff\xff\xff\xff\x0f", "\x01\x61\x00\x00", "\x01\x60\x00\x00\x00"} {
		if _, err := Types([]byte(p)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Types(%x): %v", p, err)
		}
	}
	for _, p := range []string{"\xff\xff\xff\xff\x0f", "\x01\x01a\x01b\x09\x00", "\x01\x01a\x01b\x02\x01\x01", "\x01\x01a"} {
		if _, err := Imports([]byte(p)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Imports(%x): %v", p, err)
		}
	}
}

func TestCheck(t *testing.T) {
	b := NewBuilder()
	b.Memory(1, 0)
	// Instructions with every shape of immediate the walker skips.
	body := [][]byte{
		{OpBlock, I32}, I32Const(1), {0x04, BlockVoid, 0x01, 0x05, 0x01, OpEnd}, // if/else
		{OpEnd, OpDrop},
		I64Const(-5), {OpDrop},
		{0x43, 0, 0, 0, 0, OpDrop},                 // f32.const
		{0x44, 0, 0, 0, 0, 0, 0, 0, 0, OpDrop},     // f64.const
		I32Const(0), {0x28, 2, 0x80, 0x01, OpDrop}, // i32.load align=2 offset=128
		I32Const(0), {0xfc, 0x00, OpDrop}, // i32.trunc_sat_f32_s of an i32: not validated here
		I32Const(0), I32Const(0), I32Const(0), {0xfc, 10, 0, 0}, // memory.copy
		I32Const(0), {0xfd, 0x00, 4, 0, OpDrop}, // v128.load
		{0xfd, 12}, make([]byte, 16), {0xfd, 21, 3, OpDrop}, // v128.const, i8x16.extract_lane_s
		{OpBlock, BlockVoid}, I32Const(0), {0x0e, 2, 0, 0, 0, OpEnd}, // br_table
		{0x1c, 1, I32}, // select t
	}
	b.Export("f", b.Func(Sig(nil), []byte{I32, I64}, body...))
	st, err := Check(b.Bytes(), CheckLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Functions != 1 || st.MaxNesting != 2 || st.MaxLocals != 2 || st.MaxBrTable != 2 {
		t.Errorf("stats %+v", st)
	}
	deep := NewBuilder()
	deep.Func(Sig(nil), nil, []byte{OpBlock, BlockVoid, OpLoop, BlockVoid, OpBlock, BlockVoid, OpEnd, OpEnd, OpEnd})
	_, err = Check(deep.Bytes(), CheckLimits{Nesting: 2})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "nesting" || err.Error() != "function 0 nests blocks 3 deep; the limit is 2" {
		t.Errorf("nesting: %v", err)
	}
	for _, code := range [][]byte{{0xff}, {0xfc, 99}, {0xfd, 0x80, 0x04}, {OpBlock}, {0x41}} {
		b := NewBuilder()
		b.Func(Sig(nil), nil, code)
		if _, err := Check(b.Bytes(), CheckLimits{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("code %x: %v", code, err)
		}
	}
}

// TestCheckTooManyLocals checks that a function declaring more than 2^32
// locals in two entries is malformed, with int of either size
// (GOARCH=386 go test runs it on 32 bits).
func TestCheckTooManyLocals(t *testing.T) {
	mod := []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" + // type section: func() ()
		"\x03\x02\x01\x00" + // function section: one function of type 0
		"\x0a\x10\x01\x0e" + // code section: one body of 14 bytes
		"\x02\xff\xff\xff\xff\x0f\x7f\xff\xff\xff\xff\x0f\x7f\x0b") // 2 × (2^32-1) i32 locals, end
	want := "more than 2^32 locals"
	if strconv.IntSize == 32 {
		want = "more locals than this platform counts" // 2^32-1 already
	}
	_, err := Check(mod, CheckLimits{})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), want) {
		t.Errorf("Check: %v, want malformed: %s", err, want)
	}
	var le *LimitError
	if _, err := Check(mod, CheckLimits{Locals: 1000}); !errors.As(err, &le) || le.Limit != "locals" || le.Value != 1<<32-1 {
		t.Errorf("Check with a locals limit: %v, want the limit error for %d locals", err, uint64(1<<32-1))
	}
}
