//go:build linux || darwin

package wasm

import (
	"context"
	"errors"
	"testing"

	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// memoryOps exports grow(n) (memory.grow, -1 when it fails), peek(addr)
// and poke(addr, v) (a byte), in a memory of one page that starts with
// "abc".
func memoryOps() []byte {
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	b.Data(0, []byte("abc"))
	grow := b.Func(sigHook, nil, wasmbin.LocalGet(0), wasmbin.Op(wasmbin.OpMemoryGrow, 0, 0xac /* i64.extend_i32_s */))
	peek := b.Func(sigHook, nil, wasmbin.LocalGet(0), wasmbin.Op(0x2d /* i32.load8_u */, 0, 0, 0xad /* i64.extend_i32_u */))
	poke := b.Func(sigHook, nil, wasmbin.LocalGet(0), wasmbin.LocalGet(1), wasmbin.Op(0x3a /* i32.store8 */, 0, 0), wasmbin.I64Const(0))
	b.Export("grow", grow)
	b.Export("peek", peek)
	b.Export("poke", poke)
	return withModinfo(b.Bytes(), rawInfo("memops"))
}

// call calls a (i32, i32) -> i64 export of the module's first instance.
func call(t *testing.T, m *Module, export string, a, b uint64) int64 {
	t.Helper()
	i, err := m.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer m.pool.put(i)
	r, err := i.mod.ExportedFunction(export).Call(context.Background(), a, b)
	if err != nil {
		t.Fatalf("%s(%d, %d): %v", export, a, b, err)
	}
	return int64(r[0])
}

// A module's memory is a mapping of its own (linearMemory): it grows in
// place up to the module's limit, keeps its contents, gives new pages
// zeroed, and is unmapped when the module is unloaded or fails to load.
func TestLinearMemoryMapped(t *testing.T) {
	base := mappedMemories.Load()
	h := newHost(t, WithLimits(Limits{MemoryPages: 4}))
	m, err := h.Load(context.Background(), memoryOps())
	if err != nil {
		t.Fatal(err)
	}
	if n := mappedMemories.Load() - base; n != 1 {
		t.Fatalf("%d memories mapped for one instance", n)
	}
	if got := call(t, m, "peek", 1, 0); got != 'b' {
		t.Fatalf("peek(1) = %d before growing", got)
	}
	call(t, m, "poke", 65535, 7)
	if got := call(t, m, "grow", 2, 0); got != 1 {
		t.Fatalf("grow(2) = %d, want 1 (the old size)", got)
	}
	if got := call(t, m, "peek", 1, 0); got != 'b' {
		t.Fatalf("peek(1) = %d after growing", got)
	}
	if got := call(t, m, "peek", 65535, 0); got != 7 {
		t.Fatalf("peek(65535) = %d after growing", got)
	}
	if got := call(t, m, "peek", 3*65536-1, 0); got != 0 {
		t.Fatalf("a new page holds %d", got)
	}
	call(t, m, "poke", 2*65536+5, 9)
	if got := call(t, m, "peek", 2*65536+5, 0); got != 9 {
		t.Fatalf("peek in a new page = %d", got)
	}
	if got := call(t, m, "grow", 2, 0); got != -1 {
		t.Fatalf("grow(2) = %d over the limit of 4 pages", got)
	}
	if got := call(t, m, "grow", 1, 0); got != 3 {
		t.Fatalf("grow(1) = %d up to the limit", got)
	}
	if err := m.Unload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if n := mappedMemories.Load() - base; n != 0 {
		t.Fatalf("%d memories still mapped after unloading", n)
	}

	// A load that fails after instantiating (its start function traps)
	// unmaps the memory too.
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	b.Start(b.Func(sigVoid, nil, wasmbin.Op(wasmbin.OpUnreachable)))
	if _, err := h.Load(context.Background(), withModinfo(b.Bytes(), rawInfo("trapstart"))); err == nil {
		t.Fatal("a module whose start traps loaded")
	}
	if n := mappedMemories.Load() - base; n != 0 {
		t.Fatalf("%d memories still mapped after a failed load", n)
	}

	// So does one that fails in the instantiation (a data segment out of
	// bounds), after wazero allocated the memory.
	b = wasmbin.NewBuilder()
	b.Memory(1, 0)
	b.Data(65535, []byte("abc"))
	if _, err := h.Load(context.Background(), withModinfo(b.Bytes(), rawInfo("baddata"))); err == nil {
		t.Fatal("a module whose data is out of bounds loaded")
	}
	if n := mappedMemories.Load() - base; n != 0 {
		t.Fatalf("%d memories still mapped after a failed instantiation", n)
	}

	// A module that exits (WASI proc_exit) during a call dies: its memory
	// stays mapped until the call returned, then is unmapped once.
	m, err = h.Load(context.Background(), exiter())
	if err != nil {
		t.Fatal(err)
	}
	if n := mappedMemories.Load() - base; n != 1 {
		t.Fatalf("%d memories mapped for one instance", n)
	}
	if _, err := m.Call(context.Background(), "exit", nil); !errors.Is(err, ErrTrap) {
		t.Fatalf("exit: %v, want a trap", err)
	}
	if n := mappedMemories.Load() - base; n != 0 {
		t.Fatalf("%d memories still mapped after the module exited", n)
	}
	if err := m.Unload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if n := mappedMemories.Load() - base; n != 0 {
		t.Fatalf("%d memories mapped after unloading the exited module", n)
	}

	// Closing the host unmaps the memories of the modules it still has.
	for _, w := range [][]byte{memoryOps(), batcher(batchAt, 4096)} {
		if _, err := h.Load(context.Background(), w); err != nil {
			t.Fatal(err)
		}
	}
	if n := mappedMemories.Load() - base; n != 2 {
		t.Fatalf("%d memories mapped for two instances", n)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := mappedMemories.Load() - base; n != 0 {
		t.Fatalf("%d memories still mapped after closing the host", n)
	}
}

// allocateMemory falls back to a Go slice for a memory that cannot be
// mapped (no maximum), which grows like wazero's.
func TestSliceMemory(t *testing.T) {
	l := allocateMemory(0, 0)
	if _, ok := l.(*sliceMemory); !ok {
		t.Fatalf("a memory of at most 0 bytes is a %T", l)
	}
	s := newSliceMemory(1, 1<<20)
	b := s.Reallocate(10)
	b[9] = 1
	if b = s.Reallocate(1 << 20); len(b) != 1<<20 || b[9] != 1 || b[10] != 0 {
		t.Fatalf("grown to %d bytes, b[9]=%d b[10]=%d", len(b), b[9], b[10])
	}
	if s.Reallocate(1<<20+1) != nil {
		t.Fatal("grew over its maximum")
	}
	s.Free()
}

// A forced unload during a call that does not end (a probe that blocks)
// leaves the instance's memory mapped while the call runs, and the
// release when the call ends unmaps it, once.
func TestLinearMemoryUnmappedAfterCall(t *testing.T) {
	base := mappedMemories.Load()
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, release, called := blockedCall(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Unload(ctx, true); !errors.Is(err, ErrCallStuck) {
		t.Fatalf("unload during a blocked call: %v, want ErrCallStuck", err)
	}
	if n := mappedMemories.Load() - base; n != 1 {
		t.Fatalf("%d memories mapped during the call, want 1", n)
	}
	release()
	<-called
	// Waits for the pending unload's release.
	if err := m.Unload(context.Background(), true); err != nil && !errors.Is(err, ErrUnloaded) {
		t.Fatal(err)
	}
	if n := mappedMemories.Load() - base; n != 0 {
		t.Fatalf("%d memories mapped after the call ended and the module unloaded", n)
	}
}
