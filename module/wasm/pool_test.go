package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// pooled is a module for pools: spin loops forever, trap traps, quick
// returns at once, grow grows its memory by a page and returns what
// memory.grow returned (4 bytes, little-endian; -1 when refused).
func pooled() []byte {
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	b.Export("spin", b.Func(sigHook, nil, wasmbin.Op(wasmbin.OpLoop, wasmbin.BlockVoid, wasmbin.OpBr, 0, wasmbin.OpEnd), wasmbin.I64Const(0)))
	b.Export("trap", b.Func(sigHook, nil, wasmbin.Op(wasmbin.OpUnreachable), wasmbin.I64Const(0)))
	b.Export("quick", b.Func(sigHook, nil, wasmbin.I64Const(0)))
	b.Export("grow", b.Func(sigHook, nil,
		wasmbin.I32Const(0), wasmbin.I32Const(1), wasmbin.Op(wasmbin.OpMemoryGrow, 0),
		wasmbin.Op(0x36 /* i32.store */, 2, 0),
		wasmbin.I64Const(4)))
	return withModinfo(b.Bytes(), rawInfo("pooled"))
}

// hold takes n instances of m (making them), for tests that need them
// busy or made; release gives them back.
func hold(t *testing.T, m *Module, n int) (release func()) {
	t.Helper()
	var held []*instance
	for range n {
		i, err := m.acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, i)
	}
	return func() {
		for _, i := range held {
			m.pool.put(i)
		}
	}
}

// running waits until n of m's instances run a call.
func running(m *Module, n int) {
	for {
		busy := 0
		for _, i := range *m.insts.Load() {
			if i.call.gen.Load()&1 == 1 {
				busy++
			}
		}
		if busy >= n {
			return
		}
		runtime.Gosched()
	}
}

// TestPoolGrows: a pool makes an instance only when all are busy, and no
// more than Limits.Instances; a caller waits for one.
func TestPoolGrows(t *testing.T) {
	h := newHost(t, WithLimits(Limits{Instances: 2}))
	m, err := h.Load(context.Background(), pooled())
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := m.Call(context.Background(), "quick", nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Status().Instances; n != 1 {
		t.Fatalf("%d instances after sequential calls, want 1", n)
	}
	release := hold(t, m, 2)
	if n := m.Status().Instances; n != 2 {
		t.Fatalf("%d instances with 2 busy, want 2", n)
	}
	done := make(chan error)
	go func() {
		_, err := m.Call(context.Background(), "quick", nil)
		done <- err
	}()
	release() // the waiting call gets one
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := m.Status().Instances; n != 2 {
		t.Fatalf("%d instances, want 2 (the limit)", n)
	}
}

// TestPoolHint: a call takes the instance that the last call on its P
// took, not the first idle one, so that goroutines calling at once on
// two Ps keep to an instance each; with more Ps than hints (GOMAXPROCS
// raised after the load) calls still find idle instances.
func TestPoolHint(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one P: every call runs on P 0
	h := newHost(t, WithLimits(Limits{Instances: 2}))
	m, err := h.Load(context.Background(), pooled())
	if err != nil {
		t.Fatal(err)
	}
	// The second instance is taken while the first is busy: P 0's last.
	hold(t, m, 2)()
	for range 5 {
		if _, err := m.Call(context.Background(), "quick", nil); err != nil {
			t.Fatal(err)
		}
	}
	all := *m.insts.Load()
	if c0, c1 := all[0].stats.calls.Load(), all[1].stats.calls.Load(); c0 != 0 || c1 != 5 {
		t.Fatalf("calls into instances 0 and 1: %d and %d, want 0 and 5", c0, c1)
	}

	runtime.GOMAXPROCS(4) // Ps 1 to 3 have no hint
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := m.Call(context.Background(), "quick", nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c, n := m.Status().Counters.Calls, m.Status().Instances; c != 5+8*100 || n != 2 {
		t.Fatalf("%d calls into %d instances, want %d into 2", c, n, 5+8*100)
	}
}

// TestPoolConcurrent hammers a pool of 3 from 8 goroutines: every call
// answers, counters add up, and events of every instance arrive.
func TestPoolConcurrent(t *testing.T) {
	h := newHost(t, WithLimits(Limits{Instances: 3, EventRate: -1}))
	var mu sync.Mutex
	got := 0
	p, err := marker.Register("raw:loop", func(e *marker.Event) {
		if e.Field(0).Int() == 7 {
			mu.Lock()
			got++
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	m, err := h.Load(context.Background(), fireLoop())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if err := rawCall(m, "fire_loop", 3, 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got != 8*50*3 {
		t.Errorf("%d events, want %d", got, 8*50*3)
	}
	if st := m.Status(); st.Instances > 3 || st.State != StateLive {
		t.Errorf("status %+v", st)
	}
}

// TestPoolTrap: an instance that traps while another runs kills the
// module: the other call is stopped and fails with ErrDead, every
// instance is released, and later calls fail with ErrDead.
func TestPoolTrap(t *testing.T) {
	h := newHost(t, WithLimits(Limits{Instances: 2, CallTimeout: time.Hour}))
	m, err := h.Load(context.Background(), pooled())
	if err != nil {
		t.Fatal(err)
	}
	spun := make(chan error)
	go func() {
		_, err := m.Call(context.Background(), "spin", nil)
		spun <- err
	}()
	running(m, 1)
	if _, err := m.Call(context.Background(), "trap", nil); !errors.Is(err, ErrTrap) {
		t.Fatalf("trap: %v, want ErrTrap", err)
	}
	if err := <-spun; !errors.Is(err, ErrDead) || errors.Is(err, ErrDeadline) {
		t.Fatalf("spin: %v, want ErrDead", err)
	}
	if _, err := m.Call(context.Background(), "quick", nil); !errors.Is(err, ErrDead) {
		t.Fatalf("call after death: %v, want ErrDead", err)
	}
	st := m.Status()
	if st.State != StateDead || st.Taint&module.TaintDied == 0 || st.Taint&module.TaintOverran != 0 || st.Instances != 0 {
		t.Fatalf("state %v taint %s instances %d", st.State, st.Taint, st.Instances)
	}
	if err := m.Unload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
}

// TestPoolDeadline: one instance overruns while the other serves calls:
// the overrun kills the module (L), not the other's finished calls.
func TestPoolDeadline(t *testing.T) {
	h := newHost(t, WithLimits(Limits{Instances: 2, CallTimeout: 30 * time.Millisecond}))
	m, err := h.Load(context.Background(), pooled())
	if err != nil {
		t.Fatal(err)
	}
	spun := make(chan error)
	go func() {
		_, err := m.Call(context.Background(), "spin", nil)
		spun <- err
	}()
	running(m, 1)
	ok := 0
	for {
		if _, err := m.Call(context.Background(), "quick", nil); err != nil {
			if !errors.Is(err, ErrDead) {
				t.Fatalf("quick: %v", err)
			}
			break
		}
		ok++
	}
	if err := <-spun; !errors.Is(err, ErrDeadline) {
		t.Fatalf("spin: %v, want ErrDeadline", err)
	}
	if st := m.Status(); st.State != StateDead || st.Taint&module.TaintOverran == 0 {
		t.Fatalf("state %v taint %s", st.State, st.Taint)
	}
	t.Logf("%d calls served beside the overrunning one", ok)
}

// TestPoolUnload: unloading waits for every running call, or with force
// stops them; callers waiting for an instance give up.
func TestPoolUnload(t *testing.T) {
	t.Run("waits", func(t *testing.T) {
		h := newHost(t, WithLimits(Limits{Instances: 2}))
		m, err := h.Load(context.Background(), pooled())
		if err != nil {
			t.Fatal(err)
		}
		release := hold(t, m, 2)
		waiter := make(chan error)
		go func() {
			_, err := m.Call(context.Background(), "quick", nil)
			waiter <- err
		}()
		unloaded := make(chan error)
		go func() { unloaded <- m.Unload(context.Background(), false) }()
		// The waiting caller gives up once the unload starts; the unload
		// waits for the two held instances.
		if err := <-waiter; !errors.Is(err, ErrUnloaded) {
			t.Fatalf("waiting caller: %v, want ErrUnloaded", err)
		}
		select {
		case err := <-unloaded:
			t.Fatalf("unloaded (%v) while two calls ran", err)
		default:
		}
		release()
		if err := <-unloaded; err != nil {
			t.Fatal(err)
		}
		if st := m.Status(); st.State != StateUnloaded || st.Taint&module.TaintForceUnloaded != 0 || st.Instances != 0 {
			t.Fatalf("state %v taint %s instances %d", st.State, st.Taint, st.Instances)
		}
	})
	t.Run("force", func(t *testing.T) {
		h := newHost(t, WithLimits(Limits{Instances: 2, CallTimeout: time.Hour}))
		m, err := h.Load(context.Background(), pooled())
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := m.Call(context.Background(), "spin", nil)
				errs <- err
			}()
		}
		running(m, 2)
		if err := m.Unload(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errs; !errors.Is(err, ErrUnloaded) {
				t.Fatalf("spin: %v, want ErrUnloaded", err)
			}
		}
		if st := m.Status(); st.Taint&module.TaintForceUnloaded == 0 || st.Instances != 0 {
			t.Fatalf("taint %s instances %d", st.Taint, st.Instances)
		}
	})
}

// TestPoolMemory: the module's memory cap is shared out: each instance
// grows to MemoryPages/Instances, and a module that needs more at start
// than its share is refused.
func TestPoolMemory(t *testing.T) {
	h := newHost(t, WithLimits(Limits{Instances: 2, MemoryPages: 4}))
	m, err := h.Load(context.Background(), pooled())
	if err != nil {
		t.Fatal(err)
	}
	release := hold(t, m, 2)
	release()
	grow := func(i *instance) int32 {
		out, err := i.callHook(context.Background(), nil, "grow", nil)
		if err != nil {
			t.Fatal(err)
		}
		return int32(binary.LittleEndian.Uint32(out))
	}
	var held []*instance
	for range 2 {
		i, err := m.acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, i)
	}
	for _, i := range held {
		if r := grow(i); r != 1 {
			t.Errorf("instance %d: first grow returned %d, want 1", i.n, r)
		}
		if r := grow(i); r != -1 {
			t.Errorf("instance %d: grew past 2 pages (%d)", i.n, r)
		}
	}
	for _, i := range held {
		m.pool.put(i)
	}
	if p := m.Status().MemoryPages; p != 4 {
		t.Errorf("%d pages in all, want 4", p)
	}
	_, err = h.Load(context.Background(), quiet(rawInfo("big")), WithLoadLimits(Limits{Instances: 4, MemoryPages: 3}))
	if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "each of 4 instances") {
		t.Fatalf("load: %v, want ErrMemoryLimit", err)
	}
}

// TestPoolBudget: the event budget is shared out among the instances.
func TestPoolBudget(t *testing.T) {
	h := newHost(t, WithLimits(Limits{Instances: 2, EventRate: 1e-9, EventBurst: 10}))
	p, err := marker.Register("raw:loop", func(*marker.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	m, err := h.Load(context.Background(), fireLoop())
	if err != nil {
		t.Fatal(err)
	}
	if err := rawCall(m, "fire_loop", 10, 0); err != nil {
		t.Fatal(err)
	}
	// rawCall does not publish counters (Call does): read the instance's.
	i := (*m.insts.Load())[0]
	if d, dr := i.pending.delivered, i.pending.dropped; d != 5 || dr != 5 {
		t.Fatalf("delivered %d, dropped %d; want 5 and 5 (half the burst each)", d, dr)
	}
}

// TestPoolFlags: markers that one instance defines are flagged in the
// others' memory too.
func TestPoolFlags(t *testing.T) {
	h := newHost(t, WithLimits(Limits{Instances: 2}))
	m, err := h.Load(context.Background(), flagged(flagsBase))
	if err != nil {
		t.Fatal(err)
	}
	p, err := marker.Register("raw:flag", func(*marker.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	var held []*instance
	for range 2 {
		i, err := m.acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, i)
	}
	defer func() {
		for _, i := range held {
			m.pool.put(i)
		}
	}()
	for _, i := range held {
		out, err := i.callHook(context.Background(), nil, "flag", nil)
		if err != nil || len(out) != 1 || out[0] != 1 {
			t.Errorf("instance %d: flag %v, %v; want 1", i.n, out, err)
		}
	}
}

// released reports whether every instance of m is released and its
// runtime closed.
func released(m *Module) bool {
	p := &m.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live == 0 && p.rtDone
}

// TestPoolCounters: calls from many goroutines into a pool are all
// counted, in the module's status and in the host's totals, which keep
// them after the module is unloaded.
func TestPoolCounters(t *testing.T) {
	h := newHost(t, WithLimits(Limits{Instances: 3}))
	m, err := h.Load(context.Background(), pooled())
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, calls = 8, 100
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				if _, err := m.Call(context.Background(), "quick", nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c := m.Status().Counters.Calls; c != goroutines*calls {
		t.Errorf("module counted %d calls, want %d", c, goroutines*calls)
	}
	if c := h.Stats().Calls; c != goroutines*calls {
		t.Errorf("host counted %d calls, want %d", c, goroutines*calls)
	}
	if err := m.Unload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	m2, err := h.Load(context.Background(), pooled())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Call(context.Background(), "quick", nil); err != nil {
		t.Fatal(err)
	}
	if c := h.Stats().Calls; c != goroutines*calls+1 {
		t.Errorf("host counted %d calls after an unload and a call, want %d", c, goroutines*calls+1)
	}
}

// TestPoolHammer: goroutines call into a pool, more of them than
// instances (some wait), while the module dies (an instance traps) or is
// unloaded: every call succeeds or fails with ErrDead or ErrUnloaded,
// none hangs, and every instance is released in the end, whichever way
// the calls and the end of the pool interleave.
func TestPoolHammer(t *testing.T) {
	rounds := 20
	if testing.Short() || raceEnabled {
		rounds = 5
	}
	for _, end := range []string{"trap", "unload", "force"} {
		t.Run(end, func(t *testing.T) {
			h := newHost(t, WithLimits(Limits{Instances: 3}))
			for round := range rounds {
				m, err := h.Load(context.Background(), pooled(), WithName(fmt.Sprint("pooled", round)))
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				started := make(chan struct{}, 6)
				for range 6 {
					wg.Go(func() {
						started <- struct{}{}
						for {
							_, err := m.Call(context.Background(), "quick", nil)
							if errors.Is(err, ErrDead) || errors.Is(err, ErrUnloaded) {
								return
							}
							if err != nil {
								t.Error(err)
								return
							}
						}
					})
				}
				for range 6 {
					<-started
				}
				switch end {
				case "trap":
					if _, err := m.Call(context.Background(), "trap", nil); !errors.Is(err, ErrTrap) {
						t.Fatalf("trap: %v, want ErrTrap", err)
					}
				case "unload", "force":
					if err := m.Unload(context.Background(), end == "force"); err != nil {
						t.Fatal(err)
					}
				}
				wg.Wait()
				if end == "trap" {
					if err := m.Unload(context.Background(), false); err != nil {
						t.Fatal(err)
					}
				}
				if !released(m) {
					t.Fatalf("round %d: instances left after the module ended (%d live)", round, m.pool.count())
				}
			}
		})
	}
}

// TestGrowingInstanceReleasedOnDeath: an instance being made when another
// instance dies is stopped in its initialization, fails with ErrDead, and
// is released, so that the runtime is closed. Instance 0 runs a hook that
// traps once the test writes its memory; instance 1, made for a second
// call while instance 0 is busy, runs its start function, a countdown of
// 1e9 iterations (about half a second; instance 0 ran it at load), and the test
// writes instance 0's memory as soon as instance 1 is published.
func TestGrowingInstanceReleasedOnDeath(t *testing.T) {
	b := wasmbin.NewBuilder()
	b.Memory(1, 0)
	b.Start(b.Func(sigVoid, []byte{wasmbin.I32},
		wasmbin.I32Const(1_000_000_000), wasmbin.LocalSet(0),
		wasmbin.Op(wasmbin.OpLoop, wasmbin.BlockVoid), wasmbin.LocalGet(0), wasmbin.I32Const(1),
		wasmbin.Op(wasmbin.OpI32Sub, 0x22 /* local.tee */, 0, wasmbin.OpBrIf, 0, wasmbin.OpEnd)))
	// loop { if i32.load(0) { unreachable } }
	b.Export("wait", b.Func(sigHook, nil,
		wasmbin.Op(wasmbin.OpLoop, wasmbin.BlockVoid), wasmbin.I32Const(0),
		wasmbin.Op(0x28 /* i32.load */, 2, 0, wasmbin.OpIf, wasmbin.BlockVoid, wasmbin.OpUnreachable, wasmbin.OpEnd, wasmbin.OpBr, 0, wasmbin.OpEnd),
		wasmbin.I64Const(0)))
	b.Export("quick", b.Func(sigHook, nil, wasmbin.I64Const(0)))
	h := newHost(t, WithLimits(Limits{Instances: 2, InitTimeout: time.Minute, CallTimeout: time.Minute}))
	m, err := h.Load(context.Background(), withModinfo(b.Bytes(), rawInfo("slowstart")))
	if err != nil {
		t.Fatal(err)
	}
	errA := make(chan error, 1)
	go func() {
		_, err := m.Call(context.Background(), "wait", nil)
		errA <- err
	}()
	running(m, 1)
	errB := make(chan error, 1)
	go func() {
		_, err := m.Call(context.Background(), "quick", nil)
		errB <- err
	}()
	running(m, 2) // instance 1 published, in its initialization
	if !(*(*m.insts.Load())[0].self.Load()).Memory().WriteUint32Le(0, 1) {
		t.Fatal("cannot write instance 0's memory")
	}
	if err := <-errA; !errors.Is(err, ErrTrap) {
		t.Fatalf("instance 0's call: %v, want ErrTrap", err)
	}
	if err := <-errB; !errors.Is(err, ErrDead) {
		// nil if instance 1's start ended before instance 0 died: the
		// machine is too slow for this test.
		t.Fatalf("the call making instance 1: %v, want ErrDead", err)
	}
	m.pool.mu.Lock()
	live, closed := m.pool.live, m.pool.rtDone
	m.pool.mu.Unlock()
	if live != 0 || !closed {
		t.Errorf("after the death: %d instances live, runtime closed %v; want 0, true", live, closed)
	}
}

// TestHostCallsWhileInstanceReleased: host calls of one instance, which
// look their instance up among all (instanceOf), run while another
// instance dies and is released. Run with -race: the lookup must not
// read what the release writes.
func TestHostCallsWhileInstanceReleased(t *testing.T) {
	b := wasmbin.NewBuilder()
	enabled := b.ImportFunc(module.ABINamespace, "enabled", wasmbin.Sig([]byte{wasmbin.I32}, wasmbin.I32))
	b.Memory(1, 0)
	b.Export("spin", b.Func(sigHook, nil, wasmbin.Op(wasmbin.OpLoop, wasmbin.BlockVoid, wasmbin.OpBr, 0, wasmbin.OpEnd), wasmbin.I64Const(0)))
	// loop { enabled(1) }: a host call per iteration
	b.Export("ask", b.Func(sigHook, nil,
		wasmbin.Op(wasmbin.OpLoop, wasmbin.BlockVoid), wasmbin.I32Const(1), wasmbin.Call(enabled),
		wasmbin.Op(wasmbin.OpDrop, wasmbin.OpBr, 0, wasmbin.OpEnd), wasmbin.I64Const(0)))
	for range 5 {
		h := newHost(t, WithLimits(Limits{Instances: 2, CallTimeout: 20 * time.Millisecond}))
		m, err := h.Load(context.Background(), withModinfo(b.Bytes(), rawInfo("asker")))
		if err != nil {
			t.Fatal(err)
		}
		errA := make(chan error, 1)
		go func() {
			_, err := m.Call(context.Background(), "spin", nil)
			errA <- err
		}()
		running(m, 1)
		_, errB := m.Call(context.Background(), "ask", nil)
		// Whichever overruns first kills the other.
		for hook, err := range map[string]error{"spin": <-errA, "ask": errB} {
			if !errors.Is(err, ErrDeadline) && !errors.Is(err, ErrDead) {
				t.Fatalf("%s: %v, want ErrDeadline or ErrDead", hook, err)
			}
		}
	}
}
