package wasm

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

const (
	opIf      = 0x04
	opLoad8U  = 0x2d
	opStore8  = 0x3a
	flagsBase = 1024
)

// flagged is a hand-written module with enabled flags (tracemark_flags
// returns flagsAt<<32 | 16): its start function defines raw:flag(n int64)
// (handle 1); flag returns its flag byte as output, set sets it to 1,
// fire_if fires only if it is set (one load and a branch), fire fires
// regardless, fire_loop(count) is fire_if count times.
func flagged(flagsAt uint32) []byte {
	b := wasmbin.NewBuilder()
	define := b.ImportFunc(module.ABINamespace, "define", sigDefine)
	fire := b.ImportFunc(module.ABINamespace, "fire", sigFire)
	b.Memory(1, 0)
	def := rawDefinition("raw:flag")
	b.Data(0, def)
	b.Data(256, binary.LittleEndian.AppendUint64(nil, 7))
	b.Start(b.Func(sigVoid, nil,
		wasmbin.I32Const(0), wasmbin.I32Const(int32(len(def))), wasmbin.Call(define), wasmbin.Op(wasmbin.OpDrop)))
	b.Export(module.ExportFlags, b.Func(wasmbin.Sig(nil, wasmbin.I64), nil, wasmbin.I64Const(int64(flagsAt)<<32|16)))
	flag1 := wasmbin.I32Const(flagsBase + 1)
	fireCall := [][]byte{wasmbin.I32Const(1), wasmbin.I32Const(256), wasmbin.I32Const(8), wasmbin.Call(fire), wasmbin.Op(wasmbin.OpDrop)}
	b.Export("flag", b.Func(sigHook, nil, wasmbin.I64Const((flagsBase+1)<<32|1)))
	b.Export("set", b.Func(sigHook, nil, flag1, wasmbin.I32Const(1), wasmbin.Op(opStore8, 0, 0), wasmbin.I64Const(0)))
	fireIf := append([][]byte{flag1, wasmbin.Op(opLoad8U, 0, 0, opIf, wasmbin.BlockVoid)}, fireCall...)
	fireIf = append(fireIf, wasmbin.Op(wasmbin.OpEnd))
	b.Export("fire_if", b.Func(sigHook, nil, append(fireIf, wasmbin.I64Const(0))...))
	b.Export("fire", b.Func(sigHook, nil, append(fireCall, wasmbin.I64Const(0))...))
	loop := [][]byte{
		wasmbin.Op(wasmbin.OpBlock, wasmbin.BlockVoid, wasmbin.OpLoop, wasmbin.BlockVoid),
		wasmbin.LocalGet(0), wasmbin.I32Const(100), wasmbin.Op(0x49 /* i32.lt_u */, wasmbin.OpBrIf, 1),
	}
	for range 100 {
		loop = append(loop, fireIf...)
	}
	loop = append(loop,
		wasmbin.LocalGet(0), wasmbin.I32Const(100), wasmbin.Op(wasmbin.OpI32Sub), wasmbin.LocalSet(0),
		wasmbin.Op(wasmbin.OpBr, 0, wasmbin.OpEnd, wasmbin.OpEnd),
		wasmbin.I64Const(0))
	b.Export("fire_loop", b.Func(sigHook, nil, loop...))
	// empty_loop is fire_loop without the fire_ifs: its baseline.
	b.Export("empty_loop", b.Func(sigHook, nil,
		wasmbin.Op(wasmbin.OpBlock, wasmbin.BlockVoid, wasmbin.OpLoop, wasmbin.BlockVoid),
		wasmbin.LocalGet(0), wasmbin.I32Const(100), wasmbin.Op(0x49 /* i32.lt_u */, wasmbin.OpBrIf, 1),
		wasmbin.LocalGet(0), wasmbin.I32Const(100), wasmbin.Op(wasmbin.OpI32Sub), wasmbin.LocalSet(0),
		wasmbin.Op(wasmbin.OpBr, 0, wasmbin.OpEnd, wasmbin.OpEnd),
		wasmbin.I64Const(0)))
	return withModinfo(b.Bytes(), rawInfo("flagged"))
}

func callOut(t *testing.T, m *Module, hook string) string {
	t.Helper()
	out, err := m.Call(context.Background(), hook, nil)
	if err != nil {
		t.Fatalf("%s: %v", hook, err)
	}
	return string(out)
}

// TestEnabledFlagsGoGuest checks that the host keeps a Go module's flags
// current, so that its disabled markers do not call the host, and that a
// probe connected or a refusal set between calls is seen by the next.
func TestEnabledFlagsGoGuest(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, err := h.Load(context.Background(), hostileWasm(t), WithLoadPolicy(module.Open))
	if err != nil {
		t.Fatal(err)
	}
	flood := func(n string) {
		t.Helper()
		if _, err := m.Call(context.Background(), "flood", []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	flood("10")
	if c := m.Status().Counters; c.Fired != 0 {
		t.Fatalf("disabled marker: %d events reached the host, want 0", c.Fired)
	}
	if got := callOut(t, m, "enabled_flag"); got != "0" {
		t.Fatalf("Enabled() = %s without probes", got)
	}
	r := record(t, "hostile:event")
	if got := callOut(t, m, "enabled_flag"); got != "1" {
		t.Fatalf("Enabled() = %s with a probe", got)
	}
	flood("10")
	if n, c := r.count(), m.Status().Counters; n != 10 || c.Fired != 10 || c.Delivered != 10 {
		t.Fatalf("with a probe: probe got %d, counters %+v; want 10", n, c)
	}
	m.SetPolicy(module.PolicyDefault)
	m.TaintUser("test")
	flood("10")
	if got := callOut(t, m, "enabled_flag"); r.count() != 10 || got != "0" {
		t.Fatalf("refused: probe got %d events, Enabled() = %s", r.count(), got)
	}
	m.SetPolicy(module.Open)
	flood("5")
	r.probe.Unregister()
	flood("5")
	if n, c := r.count(), m.Status().Counters; n != 15 || c.Fired != 15 {
		t.Fatalf("refusal lifted, then probe gone: probe got %d, counters %+v; want 15", n, c)
	}
}

// TestEnabledFlagsRaw checks the flags a hand-written module sees.
func TestEnabledFlagsRaw(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, err := h.Load(context.Background(), flagged(flagsBase), WithLoadPolicy(module.Open))
	if err != nil {
		t.Fatal(err)
	}
	if got := callOut(t, m, "flag"); got != "\x00" {
		t.Fatalf("flag %q without probes", got)
	}
	callOut(t, m, "fire_if")
	r := record(t, "raw:flag")
	if got := callOut(t, m, "flag"); got != "\x01" {
		t.Fatalf("flag %q with a probe", got)
	}
	callOut(t, m, "fire_if")
	if r.count() != 1 || m.Status().Counters.Fired != 1 {
		t.Fatalf("probe got %d events, counters %+v; want 1", r.count(), m.Status().Counters)
	}
	m.SetPolicy(module.Strict)
	if got := callOut(t, m, "flag"); got != "\x00" {
		t.Fatalf("flag %q while refused", got)
	}
}

// TestModuleWritesOwnFlags: a module that sets its own flag for a marker
// that policy refuses, or that has no probe, gets nothing through: the
// host still checks every fire.
func TestModuleWritesOwnFlags(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, err := h.Load(context.Background(), flagged(flagsBase))
	if err != nil {
		t.Fatal(err)
	}
	callOut(t, m, "set")
	callOut(t, m, "fire_if") // no probe: reaches the host, delivered to nobody
	r := record(t, "raw:flag")
	m.TaintUser("refuse it") // the default policy refuses U
	callOut(t, m, "set")
	callOut(t, m, "fire_if")
	callOut(t, m, "fire")
	if c := m.Status().Counters; r.count() != 0 || c.Delivered != 0 || c.Fired != 3 {
		t.Fatalf("refused module that forges its flags: probe got %d, counters %+v", r.count(), c)
	}
	if m.Status().Taint&module.TaintWarning != 0 {
		t.Fatal("writing its own flags is not an ABI violation")
	}
}

// TestFlagsOutOfBounds: flags outside memory are an ABI violation; the
// module loads and works with host-side checks.
func TestFlagsOutOfBounds(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, err := h.Load(context.Background(), flagged(0xffff_fff8), WithLoadPolicy(module.Open))
	if err != nil {
		t.Fatal(err)
	}
	st := m.Status()
	if st.Taint&module.TaintWarning == 0 || !strings.Contains(st.LastError, module.ExportFlags) {
		t.Fatalf("taint %s, last error %q", st.Taint, st.LastError)
	}
	r := record(t, "raw:flag")
	callOut(t, m, "fire")
	if r.count() != 1 {
		t.Fatalf("probe got %d events, want 1", r.count())
	}
}
