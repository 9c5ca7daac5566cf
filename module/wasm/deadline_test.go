package wasm

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// busyLoop exports work, which loops 30000 times per byte of its input
// and returns no output (a loop iteration costs about a nanosecond).
func busyLoop() []byte {
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	b.Export("tracemark_alloc", b.Func(wasmbin.Sig([]byte{wasmbin.I32}, wasmbin.I32), nil, wasmbin.I32Const(0)))
	fn := b.Func(sigHook, nil,
		wasmbin.LocalGet(1), wasmbin.I32Const(30000), wasmbin.Op(0x6c /* i32.mul */), wasmbin.LocalSet(0),
		wasmbin.Op(wasmbin.OpBlock, wasmbin.BlockVoid, wasmbin.OpLoop, wasmbin.BlockVoid),
		wasmbin.LocalGet(0), wasmbin.Op(wasmbin.OpI32Eqz, wasmbin.OpBrIf, 1),
		wasmbin.LocalGet(0), wasmbin.I32Const(1), wasmbin.Op(wasmbin.OpI32Sub), wasmbin.LocalSet(0),
		wasmbin.Op(wasmbin.OpBr, 0, wasmbin.OpEnd, wasmbin.OpEnd),
		wasmbin.I64Const(0))
	b.Export("work", fn)
	return withModinfo(b.Bytes(), rawInfo("busy"))
}

// A hook doing 30 ms of work under a 100 ms deadline is not killed when
// the machine is busy: the deadline counts the module's CPU time, not
// the time it waits for a CPU. The load is goroutines spinning on every
// core (4 per core) for as long as the calls take.
func TestDeadlineUnderLoad(t *testing.T) {
	if !hasThreadClock {
		t.Skip("the deadline is wall time here")
	}
	h := newHost(t, WithLimits(Limits{CallTimeout: 100 * time.Millisecond}))
	m, err := h.Load(context.Background(), busyLoop())
	if err != nil {
		t.Fatal(err)
	}
	work := func(n int) time.Duration {
		start := time.Now()
		if _, err := m.Call(context.Background(), "work", make([]byte, n)); err != nil {
			t.Fatalf("work(%d): %v", n, err)
		}
		return time.Since(start)
	}
	// Calibrate: how many iterations make 30 ms, unloaded.
	n := 10
	for d := work(n); d < 30*time.Millisecond; d = work(n) {
		// At most doubled: a step never goes past 60 ms of CPU time.
		n = 1 + int(float64(n)*min(2, float64(30*time.Millisecond)/float64(max(d, time.Microsecond))))
		if n > 65536 {
			t.Fatal("cannot make 30 ms of work")
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	spinners := 4 * runtime.GOMAXPROCS(0)
	for range spinners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for end := time.Now().Add(20 * time.Second); !stop.Load() && time.Now().Before(end); {
				for range 1000 {
				}
			}
		}()
	}
	var slowest time.Duration
	for range 5 {
		slowest = max(slowest, work(n))
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("30000×%d iterations: %v at most under the load of %d spinning goroutines", n, slowest, spinners)
	if st := m.Status(); st.State != StateLive || st.Taint.String() != "OE" {
		t.Errorf("module %v, taint %q", st.State, st.Taint)
	}
}
