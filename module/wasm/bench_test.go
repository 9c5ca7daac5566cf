package wasm

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tracemark/tracemark/marker"
)

// BenchmarkFireFromModule measures one event fired by a Go module through
// the guest SDK (encoding), ABI v1 and the host (budget, decoding,
// marker.Dynamic.Fire) to a no-op probe: one call into the module fires
// b.N events of hostile:event(s string, n int64). The SDK appends them to
// its event buffer, which the host delivers when it fills and when the
// call returns; unbatched is the same module loaded WithoutEventBuffer,
// a host call per event as before the buffer. cpu-ns/op is the process's
// CPU time per event, less sensitive to a busy machine than ns/op.
func BenchmarkFireFromModule(b *testing.B) {
	for _, bc := range []struct {
		name      string
		probe     bool
		budget    float64
		unbatched bool
	}{
		{"probe", true, -1, false},
		{"probe+budget", true, 1e12, false},
		{"probe/unbatched", true, -1, true},
		{"disabled", false, -1, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHost(b, WithLimits(Limits{EventRate: bc.budget, EventBurst: 1 << 30, CallTimeout: 1 << 40}))
			if bc.probe {
				p, err := marker.Register("hostile:event", func(*marker.Event) {})
				if err != nil {
					b.Fatal(err)
				}
				defer p.Unregister()
			}
			var opts []LoadOption
			if bc.unbatched {
				opts = append(opts, WithoutEventBuffer())
			}
			m, err := h.Load(context.Background(), hostileWasm(b), opts...)
			if err != nil {
				b.Fatal(err)
			}
			in := []byte(strconv.Itoa(b.N))
			b.ReportAllocs()
			cpu := processCPU()
			b.ResetTimer()
			if _, err := m.Call(context.Background(), "flood", in); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if cpu >= 0 {
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			}
			// Without a probe the module's enabled flags keep its events
			// from reaching the host.
			if c := m.Status().Counters; (bc.probe && (c.Fired != uint64(b.N) || c.Delivered != uint64(b.N))) || (!bc.probe && c.Fired != 0) {
				b.Fatalf("counters %+v for %d events", c, b.N)
			}
		})
	}
}

// loadBenchModule loads into h the hostile test module (echo) or the
// example plugin.
func loadBenchModule(b *testing.B, h *Host, echo bool) *Module {
	b.Helper()
	var m *Module
	var err error
	if echo {
		m, err = h.Load(context.Background(), hostileWasm(b))
	} else {
		m, err = h.LoadFile(context.Background(), pluginPath(b))
	}
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkCallHook measures one call of a hook with a short input: echo
// (the hostile module's, which copies its input) shows the sandbox's cost
// per call, plugin the example plugin's request hook, which classifies a
// request with byte loops (each iteration costs a deadline check) and
// fires one event to a no-op probe.
func BenchmarkCallHook(b *testing.B) {
	p, err := marker.Register("classifier:*", func(*marker.Event) {})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Unregister()
	for _, bc := range []struct{ name, hook string }{{"echo", "echo"}, {"plugin", "on_request"}} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHost(b)
			m := loadBenchModule(b, h, bc.name == "echo")
			in := []byte("GET /api/users/42")
			b.Run("call", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Call(context.Background(), bc.hook, in); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("append", func(b *testing.B) {
				b.ReportAllocs()
				var out []byte
				for b.Loop() {
					if out, err = m.AppendCall(context.Background(), out[:0], bc.hook, in); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkLoadPlugin measures loading (compiling, instantiating,
// initializing) and unloading the example plugin: cold compiles it each
// time, cached takes it from the host's verified cache on disk (a second
// load in a new process), wazerodir from wazero's own cache in a
// directory (what the host used before, unverified).
func BenchmarkLoadPlugin(b *testing.B) {
	path := pluginPath(b)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			cache := wazero.NewCompilationCache()
			h, err := NewHost(WithCache(cache))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := h.LoadFile(context.Background(), path); err != nil {
				b.Fatal(err)
			}
			h.Close(context.Background())
			cache.Close(context.Background())
		}
	})
	for _, name := range []string{"cached", "wazerodir"} {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			opt := WithCacheDir(dir)
			if name == "wazerodir" {
				cache, err := wazero.NewCompilationCacheWithDir(dir)
				if err != nil {
					b.Fatal(err)
				}
				defer cache.Close(context.Background())
				opt = WithCache(cache)
			}
			h, err := NewHost(opt)
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close(context.Background())
			m, err := h.LoadFile(context.Background(), path) // fills the cache
			if err != nil {
				b.Fatal(err)
			}
			m.Unload(context.Background(), false)
			// CPU time per load too: on a busy machine the wall time
			// measures the machine. And the time of each phase.
			cpu := processCPU()
			var pt phaseTimer
			h.onPhase = pt.mark
			for b.Loop() {
				pt.start()
				m, err := h.LoadFile(context.Background(), path)
				if err != nil {
					b.Fatal(err)
				}
				if err := m.Unload(context.Background(), false); err != nil {
					b.Fatal(err)
				}
				pt.mark("unload")
			}
			if cpu >= 0 {
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			}
			pt.report(b)
			if s := h.CacheStats(); name == "cached" && (s.Hits != uint64(b.N) || s.Misses != 1) {
				b.Fatalf("cache stats %+v after %d loads", s, b.N)
			}
		})
	}
}

// phaseTimer sums the wall and CPU time of a load's phases
// (Host.onPhase) over a benchmark's loads.
type phaseTimer struct {
	last    time.Time
	lastCPU int64
	wall    map[string]time.Duration
	cpu     map[string]int64
	order   []string
}

func (p *phaseTimer) start() { p.last, p.lastCPU = time.Now(), processCPU() }

func (p *phaseTimer) mark(name string) {
	now, cpu := time.Now(), processCPU()
	if p.wall == nil {
		p.wall, p.cpu = map[string]time.Duration{}, map[string]int64{}
	}
	if _, ok := p.wall[name]; !ok {
		p.order = append(p.order, name)
	}
	p.wall[name] += now.Sub(p.last)
	p.cpu[name] += cpu - p.lastCPU
	p.last, p.lastCPU = now, cpu
}

// report reports each phase's wall time (name-ms/op) and, where the
// system measures it, CPU time (name-cpu-ms/op).
func (p *phaseTimer) report(b *testing.B) {
	for _, n := range p.order {
		b.ReportMetric(float64(p.wall[n])/1e6/float64(b.N), n+"-ms/op")
		if p.lastCPU >= 0 {
			b.ReportMetric(float64(p.cpu[n])/1e6/float64(b.N), n+"-cpu-ms/op")
		}
	}
}

// BenchmarkFireFromRawModule is BenchmarkFireFromModule without the Go
// guest: a hand-assembled loop calls fire with a fixed 8-byte argument
// buffer, so it measures the sandbox crossing and the host alone.
func BenchmarkFireFromRawModule(b *testing.B) {
	for _, probe := range []bool{true, false} {
		name := "disabled"
		if probe {
			name = "probe"
		}
		b.Run(name, func(b *testing.B) {
			h := newHost(b, WithLimits(Limits{EventRate: -1, CallTimeout: 1 << 40}))
			if probe {
				p, err := marker.Register("raw:loop", func(*marker.Event) {})
				if err != nil {
					b.Fatal(err)
				}
				defer p.Unregister()
			}
			m, err := h.Load(context.Background(), fireLoop())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			err = rawCall(m, "fire_loop", uint64(b.N), 0)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkGuest splits the cost of BenchmarkFireFromModule: the Go guest
// calling fire with a prebuilt buffer (bench_rawfire) and through the SDK
// (bench_sdk), both with a no-op probe and without budget.
func BenchmarkGuest(b *testing.B) {
	for _, export := range []string{"bench_rawfire", "bench_sdk"} {
		b.Run(export, func(b *testing.B) {
			h := newHost(b, WithLimits(Limits{EventRate: -1, CallTimeout: 1 << 40}))
			p, err := marker.Register("hostile:event", func(*marker.Event) {})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Unregister()
			m, err := h.Load(context.Background(), hostileWasm(b))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			err = rawCall(m, export, uint64(b.N), 0)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkFireDisabled measures a disabled module marker: the Go guest's
// Fire (bench_sdk100: the SDK tests the marker's enabled flag, inlined,
// 100 times per loop iteration) and a hand-written module's load and
// branch (flagged's fire_loop, also unrolled 100 times). Each also runs
// its loop without the markers (bench_empty100, empty_loop) for as many
// iterations, in the same module and the same run: loop-ns/op is that
// baseline per marker, net-ns/op the marker's cost without it (ns/op
// includes it); cpu-ns/op is the process's CPU time per marker, loop
// included.
func BenchmarkFireDisabled(b *testing.B) {
	for _, bc := range []struct {
		name, export, empty string
		wasm                func() []byte
	}{
		{"go", "bench_sdk100", "bench_empty100", func() []byte { return hostileWasm(b) }},
		{"raw", "fire_loop", "empty_loop", func() []byte { return flagged(flagsBase) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHost(b, WithLimits(Limits{EventRate: -1, CallTimeout: 1 << 40}))
			m, err := h.Load(context.Background(), bc.wasm())
			if err != nil {
				b.Fatal(err)
			}
			n := (uint64(b.N) + 99) / 100 * 100
			start := time.Now()
			if err := rawCall(m, bc.empty, n, 0); err != nil {
				b.Fatal(err)
			}
			loop := time.Since(start)
			b.ResetTimer()
			cpu := processCPU()
			start = time.Now()
			err = rawCall(m, bc.export, n, 0)
			total := time.Since(start)
			b.StopTimer()
			if cpu >= 0 {
				b.ReportMetric(float64(processCPU()-cpu)/float64(n), "cpu-ns/op")
			}
			if err != nil {
				b.Fatal(err)
			}
			if c := m.Status().Counters; c.Fired != 0 {
				b.Fatalf("%d disabled events reached the host", c.Fired)
			}
			b.ReportMetric(float64(loop)/float64(n), "loop-ns/op")
			b.ReportMetric(float64(total-loop)/float64(n), "net-ns/op")
		})
	}
}

// BenchmarkCallHookParallel measures hook calls (echo, and the example
// plugin's request hook) from one goroutine and from two at once
// (b.RunParallel with GOMAXPROCS 2), into a module of one instance (the
// two goroutines queue) and of two: the throughput of two goroutines is
// the ratio of the 1g and 2g ns/op.
func BenchmarkCallHookParallel(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs GOMAXPROCS >= 2")
	}
	p, err := marker.Register("classifier:*", func(*marker.Event) {})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Unregister()
	for _, mod := range []struct{ name, hook string }{{"echo", "echo"}, {"plugin", "on_request"}} {
		for _, instances := range []int{1, 2} {
			h := newHost(b, WithLimits(Limits{Instances: instances}))
			m := loadBenchModule(b, h, mod.name == "echo")
			// Make every instance before timing.
			var held []*instance
			for range instances {
				i, err := m.acquire(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				held = append(held, i)
			}
			for _, i := range held {
				m.pool.put(i)
			}
			in := []byte("GET /api/users/42")
			b.Run(fmt.Sprintf("%s/instances=%d/1g", mod.name, instances), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Call(context.Background(), mod.hook, in); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/instances=%d/2g", mod.name, instances), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := m.Call(context.Background(), mod.hook, in); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkCallHookSpeedup measures the throughput of hook calls from
// two goroutines against one, into a module of two instances, beside a
// control, in the same seconds: each iteration runs a phase of
// speedupPhaseTime in which one goroutine runs the control (a loop of
// pure Go, about as long as an echo call) as fast as it can, then one as
// long in which two do, then the same two phases of calls into the
// module, and counts the loops and calls, so that all see the same
// machine (on a shared machine, runs seconds apart measure the other
// programs). The phases must be long against starting and waking a
// goroutine, which takes tens of microseconds, more on a busy machine:
// with phases of a batch of 1000 calls (a quarter of a millisecond for
// each of two goroutines) the benchmark measured the wake-ups, and its
// control reached 1.54 on a quiet machine (1.95 with phases of 20000
// calls).
//
// It reports the wall time per call of each phase (1g-ns/call,
// 2g-ns/call) and their ratio (speedup: 2 would be perfect scaling), the
// control's (control-speedup: what the machine allowed meanwhile), the
// CPU time per call of the calling threads in each phase (each goroutine
// is locked to its thread for the phase and reads the thread's clock,
// exact where the process's count lags by up to a scheduler tick per
// running thread, as much as a phase), which grows with contention
// between the goroutines (cache lines bouncing between the cores,
// spinning on locks) whether or not the machine has a core free for
// each, and the cores that the calling threads of the 2g phases kept
// busy (2g-cores, control-2g-cores): under 2 when a goroutine waits, or
// when the machine runs other programs.
func BenchmarkCallHookSpeedup(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs GOMAXPROCS >= 2")
	}
	p, err := marker.Register("classifier:*", func(*marker.Event) {})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Unregister()
	var sink atomic.Uint64
	control := func(n int) bool {
		x := uint64(n)
		for range n * 400 { // about half a microsecond a call
			x = x*6364136223846793005 + 1442695040888963407
		}
		sink.Store(x)
		return true
	}
	for _, mod := range []struct {
		name, hook string
		reuse      bool // AppendCall into a buffer of the goroutine's
	}{{"echo", "echo", false}, {"plugin", "on_request", false}, {"echo/append", "echo", true}, {"plugin/append", "on_request", true}} {
		b.Run(mod.name, func(b *testing.B) {
			h := newHost(b, WithLimits(Limits{Instances: 2}))
			m := loadBenchModule(b, h, mod.hook == "echo")
			// Make both instances before timing.
			i1, err := m.acquire(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			i2, err := m.acquire(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			m.pool.put(i1)
			m.pool.put(i2)
			in := []byte("GET /api/users/42")
			calls := func(n int) bool {
				var buf [64]byte // on the calling goroutine's stack
				out := buf[:0]
				for range n {
					var err error
					if mod.reuse {
						out, err = m.AppendCall(context.Background(), out[:0], mod.hook, in)
					} else {
						_, err = m.Call(context.Background(), mod.hook, in)
					}
					if err != nil {
						b.Error(err)
						return false
					}
				}
				return true
			}
			var ctl, run speedupRun
			for b.Loop() {
				ctl.iteration(control)
				run.iteration(calls)
			}
			if run.n[0] == 0 || run.n[1] == 0 {
				return // failed
			}
			b.ReportMetric(run.perCall(0), "1g-ns/call")
			b.ReportMetric(run.perCall(1), "2g-ns/call")
			b.ReportMetric(run.speedup(), "speedup")
			b.ReportMetric(ctl.speedup(), "control-speedup")
			if run.cpu[0] >= 0 && run.cpu[1] >= 0 {
				b.ReportMetric(float64(run.cpu[0])/float64(run.n[0]), "1g-cpu-ns/call")
				b.ReportMetric(float64(run.cpu[1])/float64(run.n[1]), "2g-cpu-ns/call")
				b.ReportMetric(run.cores(), "2g-cores")
				b.ReportMetric(ctl.cores(), "control-2g-cores")
			}
		})
	}
}

// speedupRun sums BenchmarkCallHookSpeedup's phases of one goroutine
// (index 0) and of two (index 1): calls made, wall time, and the calling
// threads' CPU time (negative where it is not measured).
type speedupRun struct {
	n    [2]int64
	wall [2]time.Duration
	cpu  [2]int64
}

// iteration runs a phase of one goroutine, then one of two, calling
// calls (which makes n calls and reports false after a failure).
func (r *speedupRun) iteration(calls func(n int) bool) {
	for i, g := range []int{1, 2} {
		n, wall, cpu := speedupPhase(g, calls)
		r.n[i] += n
		r.wall[i] += wall
		if cpu < 0 || r.cpu[i] < 0 {
			r.cpu[i] = -1
		} else {
			r.cpu[i] += cpu
		}
	}
}

func (r *speedupRun) perCall(i int) float64 { return float64(r.wall[i]) / float64(r.n[i]) }

func (r *speedupRun) speedup() float64 { return r.perCall(0) / r.perCall(1) }

func (r *speedupRun) cores() float64 { return float64(r.cpu[1]) / float64(r.wall[1]) }

// speedupPhase runs g goroutines that call until the phase ends (looking
// at the clock every few calls), and returns the calls they made, the
// phase's wall time (from before the goroutines start to after the last
// ends) and their threads' CPU time (negative where it is not measured).
func speedupPhase(g int, calls func(n int) bool) (n int64, wall time.Duration, cpu int64) {
	var total, cpus atomic.Int64
	start := time.Now()
	end := start.Add(speedupPhaseTime)
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c := threadCPU()
			var k int64
			for calls(8) {
				k += 8
				if !time.Now().Before(end) {
					break
				}
			}
			total.Add(k)
			if c >= 0 {
				c = threadCPU() - c
			}
			cpus.Add(c)
		})
	}
	wg.Wait()
	return total.Load(), time.Since(start), cpus.Load()
}

// speedupPhaseTime is how long BenchmarkCallHookSpeedup's goroutines
// call in each phase: long enough that starting and waking the
// goroutines, and handing a P to a locked thread, are lost in it. With
// 10 ms phases the pure-Go control kept only 1.6-1.8 of the two cores
// busy in the two-goroutine phases, and the calls the same; with 50 ms,
// both keep 1.9-2.
const speedupPhaseTime = 50 * time.Millisecond
