package wasm

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// TestReservedStopExport: a module cannot bring its own stop global.
func TestReservedStopExport(t *testing.T) {
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	fn := b.Func(sigHook, nil, wasmbin.I64Const(0))
	b.Export("hook", fn)
	b.Export(exportStop, fn)
	h := newHost(t)
	_, err := h.Load(context.Background(), withModinfo(b.Bytes(), rawInfo("forger")))
	if !errors.Is(err, module.ErrNotWasm) {
		t.Fatalf("load: %v, want ErrNotWasm", err)
	}
}

// TestUndeclaredGlobal: code that names the global the host adds (one
// past the module's own) is refused, though it would be valid once the
// global is there.
func TestUndeclaredGlobal(t *testing.T) {
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	// global.set 0 with no global declared: clears the stop flag.
	fn := b.Func(sigHook, nil, wasmbin.I32Const(0), wasmbin.Op(0x24, 0), wasmbin.I64Const(0))
	b.Export("hook", fn)
	h := newHost(t)
	_, err := h.Load(context.Background(), withModinfo(b.Bytes(), rawInfo("clearer")))
	if !errors.Is(err, module.ErrNotWasm) {
		t.Fatalf("load: %v, want ErrNotWasm", err)
	}
}

// TestRawLoopDeadline: a hand-written loop is stopped at its deadline
// (taint L), and the host keeps running, even with one P: the loop leaves
// compiled code every FuelPerYield iterations, where Go's scheduler can
// preempt it and run the deadline's timer (without that, this test hangs).
func TestRawLoopDeadline(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	fn := b.Func(sigHook, nil, wasmbin.Op(wasmbin.OpLoop, wasmbin.BlockVoid, wasmbin.OpBr, 0, wasmbin.OpEnd), wasmbin.I64Const(0))
	b.Export("spin", fn)
	h := newHost(t, WithLimits(Limits{CallTimeout: 50 * time.Millisecond}))
	m, err := h.Load(context.Background(), withModinfo(b.Bytes(), rawInfo("spinner")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(context.Background(), "spin", nil); !errors.Is(err, ErrDeadline) {
		t.Fatalf("call: %v, want ErrDeadline", err)
	}
	if st := m.Status(); st.State != StateDead || st.Taint&module.TaintOverran == 0 {
		t.Fatalf("state %v taint %s", st.State, st.Taint)
	}
}
