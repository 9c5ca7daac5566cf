package wasm

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// TestStopIfGeneration: the watchdog's stop of a call that ended does not
// stop the next call, and the stop of the running call does.
func TestStopIfGeneration(t *testing.T) {
	var c callDeadline
	c.gen.Add(1) // a call runs
	seen := c.gen.Load()
	c.gen.Add(1) // it ends
	c.gen.Add(1) // the next starts
	c.stopIf(seen)
	if c.stopped.Load() {
		t.Fatal("the stop of an ended call stopped the next")
	}
	c.stopIf(c.gen.Load())
	if !c.stopped.Load() {
		t.Fatal("the running call was not stopped")
	}
}

// spinner is a module whose spin hook loops forever.
func spinner() []byte {
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	b.Export("spin", b.Func(sigHook, nil, wasmbin.Op(wasmbin.OpLoop, wasmbin.BlockVoid, wasmbin.OpBr, 0, wasmbin.OpEnd), wasmbin.I64Const(0)))
	b.Export("hook", b.Func(sigHook, nil, wasmbin.I64Const(0)))
	return withModinfo(b.Bytes(), rawInfo("spinner"))
}

// TestWatchdogWakes: a watchdog that went to sleep for want of calls
// still stops the next call that overruns.
func TestWatchdogWakes(t *testing.T) {
	h := newHost(t, WithLimits(Limits{CallTimeout: 20 * time.Millisecond}))
	m, err := h.Load(context.Background(), spinner())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(context.Background(), "hook", nil); err != nil {
		t.Fatal(err)
	}
	w := h.watchdog()
	for !w.parked.Load() {
		runtime.Gosched() // until the watchdog sleeps (idleTime)
	}
	start := time.Now()
	if _, err := m.Call(context.Background(), "spin", nil); !errors.Is(err, ErrDeadline) {
		t.Fatalf("call: %v, want ErrDeadline", err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("stopped after %v, before its deadline of 20ms", d)
	}
}

// TestWatchdogTick: the watchdog ticks an eighth of the shortest deadline
// of its host's modules, within bounds.
func TestWatchdogTick(t *testing.T) {
	h := newHost(t)
	if _, err := h.Load(context.Background(), spinner()); err != nil {
		t.Fatal(err)
	}
	if w := h.watchdog(); w.tick != maxTick {
		t.Errorf("tick %v with the default deadline, want %v", w.tick, maxTick)
	}
	if _, err := h.Load(context.Background(), answer("a", 1), WithLoadLimits(Limits{CallTimeout: 40 * time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	if w := h.watchdog(); w.tick != 5*time.Millisecond {
		t.Errorf("tick %v with a deadline of 40ms, want 5ms", w.tick)
	}
}

// TestWatchdogClose: closing the host ends its watchdog's goroutine, and
// unloading leaves the watchdog.
func TestWatchdogClose(t *testing.T) {
	h, err := NewHost(WithCache(testCache))
	if err != nil {
		t.Fatal(err)
	}
	m, err := h.Load(context.Background(), spinner())
	if err != nil {
		t.Fatal(err)
	}
	w := h.watchdog()
	w.mu.Lock()
	n := len(w.calls)
	w.mu.Unlock()
	if n != 1 {
		t.Errorf("%d calls watched, want 1", n)
	}
	m.Unload(context.Background(), false)
	w.mu.Lock()
	n = len(w.calls)
	w.mu.Unlock()
	if n != 0 {
		t.Errorf("%d calls watched after unloading, want 0", n)
	}
	h.Close(context.Background())
	select {
	case <-w.done:
	default:
		t.Fatal("the watchdog runs after Close")
	}
}
