package wasm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
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

// TestRecursionDeadline: a module without a loop, f(n) = if n { f(n-1);
// f(n-1) } with n = 60, makes 2^60 calls at a stack depth of 60: it is
// stopped at its deadline by the check at the entry of every function
// that calls, with one P too (the entry also counts fuel; with the check
// alone that run hangs, as TestRawLoopDeadline's does without fuel).
//
// Each case runs in a process of its own, which the test kills (with
// SIGQUIT, for its goroutines) if it has not ended within
// recursionBound: a module that is never stopped cannot be preempted, so
// with one P nothing else in its process runs, not even the test
// binary's -timeout; with more, the next garbage collection waits for it
// forever.
func TestRecursionDeadline(t *testing.T) {
	if procs := os.Getenv(recursionEnv); procs != "" {
		recursionDeadline(t, procs)
		return
	}
	for _, procs := range []string{"0", "1"} {
		t.Run("GOMAXPROCS="+procs, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), recursionBound)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRecursionDeadline$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), recursionEnv+"="+procs, "GOTRACEBACK=all")
			cmd.Cancel = func() error { return quit(cmd.Process) }
			cmd.WaitDelay = 10 * time.Second // then it is killed
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the module was not stopped: its process had not ended %v after the call's 50 ms deadline; its output and goroutines:\n%s", recursionBound, out)
			}
			if err != nil || !strings.Contains(string(out), "--- PASS: TestRecursionDeadline") {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// recursionEnv, set, makes TestRecursionDeadline run its case with
// GOMAXPROCS of its value (0: unchanged).
const recursionEnv = "TRACEMARK_RECURSION_PROCS"

// recursionBound is how long a case of TestRecursionDeadline may take,
// process start included, before it counts as hung: ample, even loaded.
const recursionBound = 2 * time.Minute

// recursionDeadline is a case of TestRecursionDeadline.
func recursionDeadline(t *testing.T, procs string) {
	n, err := strconv.Atoi(procs)
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	f := b.Func(wasmbin.Sig([]byte{wasmbin.I32}), nil, // function 0: no imports
		wasmbin.LocalGet(0), wasmbin.Op(wasmbin.OpIf, wasmbin.BlockVoid),
		wasmbin.LocalGet(0), wasmbin.I32Const(1), wasmbin.Op(wasmbin.OpI32Sub), wasmbin.Call(0),
		wasmbin.LocalGet(0), wasmbin.I32Const(1), wasmbin.Op(wasmbin.OpI32Sub), wasmbin.Call(0),
		wasmbin.Op(wasmbin.OpEnd))
	b.Export("spin", b.Func(sigHook, nil, wasmbin.I32Const(60), wasmbin.Call(f), wasmbin.I64Const(0)))
	// Not newHost: its Close at cleanup would wait for a call that is
	// never stopped far longer than this one does.
	h, err := NewHost(WithCache(testCache), WithLimits(Limits{CallTimeout: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	m, err := h.Load(context.Background(), withModinfo(b.Bytes(), rawInfo("recurser")))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.Call(context.Background(), "spin", nil)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrDeadline) {
			t.Fatalf("call: %v, want ErrDeadline", err)
		}
	case <-time.After(20 * time.Second):
		// (With one P, a module that is never stopped holds it, and this
		// does not fire: the parent's recursionBound does.)
		t.Fatal("the call was not stopped 20 s after its 50 ms deadline")
	}
	if st := m.Status(); st.State != StateDead || st.Taint&module.TaintOverran == 0 {
		t.Fatalf("state %v taint %s", st.State, st.Taint)
	}
}
