package wasm

import (
	"encoding/binary"

	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// Raw modules, assembled byte by byte: what no Go compiler would emit.

var (
	sigDefine = wasmbin.Sig([]byte{wasmbin.I32, wasmbin.I32}, wasmbin.I32)
	sigFire   = wasmbin.Sig([]byte{wasmbin.I32, wasmbin.I32, wasmbin.I32}, wasmbin.I32)
	sigHook   = wasmbin.Sig([]byte{wasmbin.I32, wasmbin.I32}, wasmbin.I64)
	sigVoid   = wasmbin.Sig(nil)
)

// withModinfo appends a metadata section (nil: none).
func withModinfo(b []byte, info *module.Modinfo) []byte {
	if info == nil {
		return b
	}
	out, err := module.SetModinfo(b, info)
	if err != nil {
		panic(err)
	}
	return out
}

func rawInfo(name string) *module.Modinfo {
	return &module.Modinfo{Name: name, Version: "v0", License: "MIT", ABI: 1}
}

// rawDefinition encodes an ABI v1 definition of name with one int64 field n.
func rawDefinition(name string) []byte {
	b := append([]byte{byte(len(name))}, name...)
	b = append(b, 1, 4, 1, 'n', 0, 0, 0)
	return b
}

// trapInFire defines raw:event(n int64) and exports trap_in_fire, which
// fires it with n=7 and then executes unreachable.
func trapInFire() []byte {
	b := wasmbin.NewBuilder()
	define := b.ImportFunc(module.ABINamespace, "define", sigDefine)
	fire := b.ImportFunc(module.ABINamespace, "fire", sigFire)
	b.Memory(1, 0)
	def := rawDefinition("raw:event")
	b.Data(0, def)
	b.Data(256, binary.LittleEndian.AppendUint64(nil, 7))
	fn := b.Func(sigHook, []byte{wasmbin.I32},
		wasmbin.I32Const(0), wasmbin.I32Const(int32(len(def))), wasmbin.Call(define), wasmbin.LocalSet(2),
		wasmbin.LocalGet(2), wasmbin.I32Const(256), wasmbin.I32Const(8), wasmbin.Call(fire), wasmbin.Op(wasmbin.OpDrop),
		wasmbin.Op(wasmbin.OpUnreachable))
	b.Export("trap_in_fire", fn)
	return withModinfo(b.Bytes(), rawInfo("raw"))
}

// startLoop has a start function that never returns.
func startLoop() []byte {
	b := wasmbin.NewBuilder()
	fn := b.Func(sigVoid, nil, wasmbin.Op(wasmbin.OpLoop, wasmbin.BlockVoid, wasmbin.OpBr, 0, wasmbin.OpEnd))
	b.Start(fn)
	return withModinfo(b.Bytes(), rawInfo("spin"))
}

// growBomb exports grow, which grows memory a page at a time until
// memory.grow fails, and returns the number of pages it got.
func growBomb() []byte {
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	// loop: if memory.grow(1) == -1 break; continue. Then return memory.size.
	fn := b.Func(sigHook, nil,
		wasmbin.Op(wasmbin.OpBlock, wasmbin.BlockVoid, wasmbin.OpLoop, wasmbin.BlockVoid),
		wasmbin.I32Const(1), wasmbin.Op(wasmbin.OpMemoryGrow, 0),
		wasmbin.I32Const(-1), wasmbin.Op(0x46 /* i32.eq */, wasmbin.OpBrIf, 1, wasmbin.OpBr, 0, wasmbin.OpEnd, wasmbin.OpEnd),
		wasmbin.Op(wasmbin.OpMemorySize, 0, 0xad /* i64.extend_i32_u */))
	b.Export("grow", fn)
	return withModinfo(b.Bytes(), rawInfo("grower"))
}

// otherABI imports fire from tracemark_v2 and calls it from its hook.
func otherABI(info *module.Modinfo) []byte {
	b := wasmbin.NewBuilder()
	fire := b.ImportFunc("tracemark_v2", "fire", sigFire)
	b.Memory(1, 0)
	fn := b.Func(sigHook, nil,
		wasmbin.I32Const(1), wasmbin.I32Const(0), wasmbin.I32Const(0), wasmbin.Call(fire), wasmbin.Op(wasmbin.OpDrop),
		wasmbin.I64Const(0))
	b.Export("hook", fn)
	return withModinfo(b.Bytes(), info)
}

// quiet is a module that does nothing, with its metadata.
func quiet(info *module.Modinfo) []byte {
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	fn := b.Func(sigHook, nil, wasmbin.I64Const(0))
	b.Export("hook", fn)
	return withModinfo(b.Bytes(), info)
}

// fireLoop defines raw:event(n int64) and exports fire_loop(count, _),
// which fires it count times with n=7: the host side of a module's fire
// without any guest SDK.
func fireLoop() []byte {
	b := wasmbin.NewBuilder()
	define := b.ImportFunc(module.ABINamespace, "define", sigDefine)
	fire := b.ImportFunc(module.ABINamespace, "fire", sigFire)
	b.Memory(1, 0)
	def := rawDefinition("raw:loop")
	b.Data(0, def)
	b.Data(256, binary.LittleEndian.AppendUint64(nil, 7))
	// locals: 2 = handle
	fn := b.Func(sigHook, []byte{wasmbin.I32},
		wasmbin.I32Const(0), wasmbin.I32Const(int32(len(def))), wasmbin.Call(define), wasmbin.LocalSet(2),
		wasmbin.Op(wasmbin.OpBlock, wasmbin.BlockVoid, wasmbin.OpLoop, wasmbin.BlockVoid),
		wasmbin.LocalGet(0), wasmbin.Op(wasmbin.OpI32Eqz, wasmbin.OpBrIf, 1),
		wasmbin.LocalGet(2), wasmbin.I32Const(256), wasmbin.I32Const(8), wasmbin.Call(fire), wasmbin.Op(wasmbin.OpDrop),
		wasmbin.LocalGet(0), wasmbin.I32Const(1), wasmbin.Op(wasmbin.OpI32Sub), wasmbin.LocalSet(0),
		wasmbin.Op(wasmbin.OpBr, 0, wasmbin.OpEnd, wasmbin.OpEnd),
		wasmbin.I64Const(0))
	b.Export("fire_loop", fn)
	return withModinfo(b.Bytes(), rawInfo("rawloop"))
}
