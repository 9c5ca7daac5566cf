package wasmbin

// Builder assembles a small module. Tests use it to make modules that no
// compiler would emit: hostile loops, traps, garbage arguments, bad
// imports. Function indices count imports first, as in the binary format.
type Builder struct {
	types   []FuncType
	imports []Import
	funcs   []builtFunc
	exports []Export
	memory  *[2]uint32 // min, max (max 0: none)
	data    []dataSegment
	start   int
	custom  []customSection
}

type builtFunc struct {
	typ    uint32
	locals []byte // one i32/i64/... per local
	body   []byte
	// run locals of runType, declared in one entry (FuncLocals)
	run     uint32
	runType byte
}

type dataSegment struct {
	offset uint32
	bytes  []byte
}

type customSection struct {
	name    string
	payload []byte
}

// NewBuilder returns an empty module builder.
func NewBuilder() *Builder { return &Builder{start: -1} }

func (b *Builder) typeIndex(t FuncType) uint32 {
	for i, u := range b.types {
		if u.Equal(t) {
			return uint32(i)
		}
	}
	b.types = append(b.types, t)
	return uint32(len(b.types) - 1)
}

// ImportFunc adds a function import and returns its function index.
// Imports must all be added before functions.
func (b *Builder) ImportFunc(module, name string, t FuncType) uint32 {
	if len(b.funcs) > 0 {
		panic("wasmbin: imports must come before functions")
	}
	b.imports = append(b.imports, Import{Module: module, Name: name, Kind: KindFunc, Type: b.typeIndex(t)})
	return uint32(len(b.imports) - 1)
}

// Func adds a function with the given signature, extra locals and body
// (instructions, without the final end) and returns its index.
func (b *Builder) Func(t FuncType, locals []byte, body ...[]byte) uint32 {
	var code []byte
	for _, c := range body {
		code = append(code, c...)
	}
	b.funcs = append(b.funcs, builtFunc{typ: b.typeIndex(t), locals: locals, body: code})
	return uint32(len(b.imports) + len(b.funcs) - 1)
}

// Export exports function index fn under name.
func (b *Builder) Export(name string, fn uint32) {
	b.exports = append(b.exports, Export{Name: name, Kind: KindFunc, Index: fn})
}

// Memory defines memory 0 with min pages (and max pages if max > 0) and
// exports it as "memory".
func (b *Builder) Memory(min, max uint32) {
	b.memory = &[2]uint32{min, max}
	b.exports = append(b.exports, Export{Name: "memory", Kind: KindMemory})
}

// Data places bytes at offset in memory 0 when the module is instantiated.
func (b *Builder) Data(offset uint32, bytes []byte) {
	b.data = append(b.data, dataSegment{offset, bytes})
}

// Start makes function fn the module's start function.
func (b *Builder) Start(fn uint32) { b.start = int(fn) }

// Custom adds a custom section at the end of the module.
func (b *Builder) Custom(name string, payload []byte) {
	b.custom = append(b.custom, customSection{name, payload})
}

// Bytes encodes the module.
func (b *Builder) Bytes() []byte {
	out := []byte(Header)
	if len(b.types) > 0 {
		p := AppendU32(nil, uint32(len(b.types)))
		for _, t := range b.types {
			p = append(p, 0x60)
			p = AppendU32(p, uint32(len(t.Params)))
			p = append(p, t.Params...)
			p = AppendU32(p, uint32(len(t.Results)))
			p = append(p, t.Results...)
		}
		out = AppendSection(out, SectionType, p)
	}
	if len(b.imports) > 0 {
		p := AppendU32(nil, uint32(len(b.imports)))
		for _, im := range b.imports {
			p = AppendName(p, im.Module)
			p = AppendName(p, im.Name)
			p = append(p, KindFunc)
			p = AppendU32(p, im.Type)
		}
		out = AppendSection(out, SectionImport, p)
	}
	if len(b.funcs) > 0 {
		p := AppendU32(nil, uint32(len(b.funcs)))
		for _, f := range b.funcs {
			p = AppendU32(p, f.typ)
		}
		out = AppendSection(out, SectionFunction, p)
	}
	if b.memory != nil {
		p := AppendU32(nil, 1)
		if b.memory[1] > 0 {
			p = append(p, 1)
			p = AppendU32(p, b.memory[0])
			p = AppendU32(p, b.memory[1])
		} else {
			p = append(p, 0)
			p = AppendU32(p, b.memory[0])
		}
		out = AppendSection(out, SectionMemory, p)
	}
	if len(b.exports) > 0 {
		p := AppendU32(nil, uint32(len(b.exports)))
		for _, e := range b.exports {
			p = AppendName(p, e.Name)
			p = append(p, e.Kind)
			p = AppendU32(p, e.Index)
		}
		out = AppendSection(out, SectionExport, p)
	}
	if b.start >= 0 {
		out = AppendSection(out, SectionStart, AppendU32(nil, uint32(b.start)))
	}
	if len(b.funcs) > 0 {
		p := AppendU32(nil, uint32(len(b.funcs)))
		for _, f := range b.funcs {
			var body []byte
			if f.run > 0 {
				body = append(AppendU32(append(body, 1), f.run), f.runType)
			} else {
				body = AppendU32(body, uint32(len(f.locals)))
				for _, l := range f.locals {
					body = append(body, 1, l)
				}
			}
			body = append(body, f.body...)
			body = append(body, OpEnd)
			p = AppendU32(p, uint32(len(body)))
			p = append(p, body...)
		}
		out = AppendSection(out, SectionCode, p)
	}
	if len(b.data) > 0 {
		p := AppendU32(nil, uint32(len(b.data)))
		for _, d := range b.data {
			p = append(p, 0) // active, memory 0
			p = append(p, OpI32Const)
			p = AppendS64(p, int64(int32(d.offset)))
			p = append(p, OpEnd)
			p = AppendU32(p, uint32(len(d.bytes)))
			p = append(p, d.bytes...)
		}
		out = AppendSection(out, SectionData, p)
	}
	for _, c := range b.custom {
		out = AppendCustom(out, c.name, c.payload)
	}
	return out
}

// Opcodes used by tests.
const (
	OpUnreachable byte = 0x00
	OpBlock       byte = 0x02
	OpIf          byte = 0x04
	OpLoop        byte = 0x03
	OpBr          byte = 0x0c
	OpBrIf        byte = 0x0d
	OpEnd         byte = 0x0b
	OpCall        byte = 0x10
	OpDrop        byte = 0x1a
	OpLocalGet    byte = 0x20
	OpLocalSet    byte = 0x21
	OpI32Const    byte = 0x41
	OpI64Const    byte = 0x42
	OpI32Eqz      byte = 0x45
	OpI32Add      byte = 0x6a
	OpI32Sub      byte = 0x6b
	OpMemoryGrow  byte = 0x40
	OpMemorySize  byte = 0x3f
	BlockVoid     byte = 0x40
)

// I32Const returns the instruction i32.const v.
func I32Const(v int32) []byte { return AppendS64([]byte{OpI32Const}, int64(v)) }

// I64Const returns the instruction i64.const v.
func I64Const(v int64) []byte { return AppendS64([]byte{OpI64Const}, v) }

// Call returns the instruction call fn.
func Call(fn uint32) []byte { return AppendU32([]byte{OpCall}, fn) }

// LocalGet returns the instruction local.get i.
func LocalGet(i uint32) []byte { return AppendU32([]byte{OpLocalGet}, i) }

// LocalSet returns the instruction local.set i.
func LocalSet(i uint32) []byte { return AppendU32([]byte{OpLocalSet}, i) }

// Op returns a sequence of single-byte instructions.
func Op(ops ...byte) []byte { return ops }

// Sig makes a function type from parameter and result types.
func Sig(params []byte, results ...byte) FuncType {
	return FuncType{Params: params, Results: results}
}

// FuncLocals adds a function that declares n locals of type typ in one
// entry, the way a compiler would not: a few bytes for any number of
// locals.
func (b *Builder) FuncLocals(t FuncType, n uint32, typ byte, body []byte) uint32 {
	b.funcs = append(b.funcs, builtFunc{typ: b.typeIndex(t), body: body, run: n, runType: typ})
	return uint32(len(b.imports) + len(b.funcs) - 1)
}
