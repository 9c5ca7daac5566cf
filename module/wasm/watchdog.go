package wasm

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// callDeadline is the deadline of the calls into one instance. A call
// costs no timer, no clock reading and no lock at its start: it records
// its thread's CPU clock and its budget and marks itself running; the
// host's watchdog does the rest.
type callDeadline struct {
	// gen is odd while a call runs; each call adds 1 at its start and 1
	// at its end, so that the watchdog can tell one call from the next.
	gen     atomic.Uint64
	clock   atomic.Uint64 // clock id of the call's thread; 0: no clock
	timeout atomic.Int64  // the running call's budget of CPU time and sleep
	slept   *atomic.Int64 // ns the running call slept
	stopped atomic.Bool   // the host stopped the running call
	end     func()        // Module.endCall, made once

	// mu orders the end of a call with the watchdog's and the unload's
	// stop, so that neither stops the next call by mistake.
	mu   sync.Mutex
	stop api.MutableGlobal // the instance's stop global, once instantiated

	wd         *watchdog // the host's, once registered (with callMu held)
	registered bool
	fastTid    bool // threadClock may read thread ids from the runtime

	// The watchdog's view of the running call, touched only by the
	// watchdog's goroutine.
	seenGen   uint64
	seenAt    time.Time
	cpuSeen   int64 // -1 without a clock
	sleptSeen int64
}

// callContext starts a call into the module: it returns the caller's
// values without its cancellation (a caller that gives up must not kill
// the module; and wazero would start a goroutine per call to watch it),
// and a function that ends the call, to call on the same goroutine. The
// goroutine is locked to its thread in between, so that the call's CPU
// time is its thread's. Called with callMu held.
//
// The deadline is timeout of CPU time of the calling thread (where the
// system has a clock per thread, Linux) plus time asleep, and
// wallTimeout(timeout) of wall time, a backstop; elsewhere timeout is
// wall time. The host's watchdog checks it (see watchdog).
func (i *instance) callContext(ctx context.Context, timeout time.Duration) (context.Context, func()) {
	m := i.m
	c := &i.call
	if !c.registered {
		c.slept, c.end = &i.slept, i.endCall
		c.wd = m.host.watchdog()
		c.wd.register(c, min(timeout, m.limits.CallTimeout))
		c.registered = true
		c.fastTid = threadIDsChecked()
	}
	// The values below mostly are the last call's: each is stored only
	// if it changed (a load instead of a locked exchange). The watchdog
	// reads them only after the running mark below.
	storeIfNew(&i.budgetNs, int64(timeout))
	storeIfNew(&c.timeout, int64(timeout))
	storeIfNew(&i.slept, 0)
	runtime.LockOSThread()
	if c.stopped.Load() {
		c.stopped.Store(false)
	}
	if c.stop != nil {
		c.stop.Set(0)
	}
	clock, ok := threadClock(c.fastTid)
	if !ok {
		clock = 0
	}
	if c.clock.Load() != uint64(clock) {
		c.clock.Store(uint64(clock))
	}
	c.gen.Add(1) // running
	c.wd.kick()
	if ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	return ctx, c.end
}

// storeIfNew stores v in a unless a holds it already.
func storeIfNew(a *atomic.Int64, v int64) {
	if a.Load() != v {
		a.Store(v)
	}
}

// endCall ends the running call and unlocks its thread.
func (i *instance) endCall() {
	c := &i.call
	c.mu.Lock()
	c.gen.Add(1)
	c.mu.Unlock()
	runtime.UnlockOSThread()
}

// armStop gives the running call's deadline the instance's stop global,
// and sets it if the call was stopped before the instance existed.
func (i *instance) armStop(g api.MutableGlobal) {
	c := &i.call
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stop = g
	if c.stopped.Load() {
		g.Set(1)
	}
}

// disarm forgets the instance's stop global and leaves the watchdog.
// Called with callMu held, when the instance is released.
func (i *instance) disarm() {
	c := &i.call
	c.mu.Lock()
	c.stop = nil
	c.mu.Unlock()
	if c.registered {
		c.wd.unregister(c)
		c.registered = false
	}
}

// stopLocked stops the running call: the module traps at its next loop
// iteration, and a call that returns is failed. Called with call.mu held.
func (c *callDeadline) stopLocked() {
	c.stopped.Store(true)
	if c.stop != nil {
		c.stop.Set(1)
	}
}

// stopIf stops the call of generation gen if it still runs.
func (c *callDeadline) stopIf(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() == gen {
		c.stopLocked()
	}
}

// cancelCall stops the running call, if there is one: it overran its
// budget asleep, or the module is being force-unloaded.
func (i *instance) cancelCall() {
	c := &i.call
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load()&1 == 1 {
		c.stopLocked()
	}
}

// watchdog enforces the deadlines of a host's calls, one goroutine for
// every module. Every tick (an eighth of the shortest deadline of the
// host's modules, between 1 and 10 ms) it looks at the running calls. A
// call it sees for the first time has its thread's CPU clock read; at
// later ticks, once the CPU time since then plus the time asleep reaches
// the call's budget, or its wall time the backstop, the call is stopped.
// What a call used before the watchdog first saw it (less than a tick) is
// not counted: a call is never stopped early, and at most two ticks late.
// A call that ends before the next tick costs the watchdog nothing but a
// load. The watchdog sleeps when no call ran for a while, and the next
// call wakes it.
type watchdog struct {
	mu     sync.Mutex
	calls  map[*callDeadline]struct{}
	tick   time.Duration
	closed bool
	// parked is set while the goroutine waits on wake for a call.
	parked  atomic.Bool
	wake    chan struct{}
	started bool
	done    chan struct{} // closed when the goroutine ends
}

// Tick bounds, and how long the watchdog ticks without a call before it
// sleeps.
const (
	minTick  = time.Millisecond
	maxTick  = 10 * time.Millisecond
	idleTime = 200 * time.Millisecond
)

// watchdog returns the host's watchdog.
func (h *Host) watchdog() *watchdog {
	h.wdOnce.Do(func() {
		h.wd = &watchdog{calls: map[*callDeadline]struct{}{}, tick: maxTick, wake: make(chan struct{}, 1), done: make(chan struct{})}
	})
	return h.wd
}

func (w *watchdog) register(c *callDeadline, timeout time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[c] = struct{}{}
	w.tick = min(w.tick, max(minTick, timeout/8))
	if !w.started && !w.closed {
		w.started = true
		go w.run()
	}
}

func (w *watchdog) unregister(c *callDeadline) {
	w.mu.Lock()
	delete(w.calls, c)
	w.mu.Unlock()
}

// kick wakes the watchdog if it sleeps. Called when a call starts.
func (w *watchdog) kick() {
	if w.parked.Load() && w.parked.CompareAndSwap(true, false) {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// close ends the watchdog's goroutine and waits for it.
func (w *watchdog) close() {
	w.mu.Lock()
	w.closed = true
	started := w.started
	w.mu.Unlock()
	if !started {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}

func (w *watchdog) run() {
	defer close(w.done)
	t := time.NewTimer(maxTick)
	defer t.Stop()
	idle := time.Duration(0)
	for {
		w.mu.Lock()
		tick, closed := w.tick, w.closed
		w.mu.Unlock()
		if closed {
			return
		}
		t.Reset(tick)
		select {
		case <-t.C:
		case <-w.wake:
			continue // closing, or woken too early: look again
		}
		if w.check(tick) {
			idle = 0
			continue
		}
		if idle += tick; idle < idleTime {
			continue
		}
		// Nothing ran for a while: sleep until a call starts. A call
		// that started between the check and parking is seen by the
		// check after parking.
		w.parked.Store(true)
		if w.check(tick) {
			w.parked.Store(false)
			idle = 0
			continue
		}
		<-w.wake
		w.parked.Store(false)
		idle = 0
	}
}

// check looks at every running call once, stops those past their
// deadline, and reports whether any call is running.
func (w *watchdog) check(tick time.Duration) bool {
	now := time.Now()
	running := false
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.calls {
		gen := c.gen.Load()
		if gen&1 == 0 {
			continue
		}
		running = true
		clock := uintptr(c.clock.Load())
		if gen != c.seenGen {
			c.seenGen, c.seenAt, c.cpuSeen, c.sleptSeen = gen, now, -1, c.slept.Load()
			if clock != 0 {
				c.cpuSeen = cpuTime(clock)
			}
			continue
		}
		timeout := time.Duration(c.timeout.Load())
		wall := now.Sub(c.seenAt)
		used := wall
		if c.cpuSeen >= 0 {
			if cpu := cpuTime(clock); cpu >= 0 {
				used = time.Duration(cpu-c.cpuSeen) + time.Duration(c.slept.Load()-c.sleptSeen)
			}
		}
		if used >= timeout || wall >= wallTimeout(timeout) {
			c.stopIf(gen)
		}
	}
	return running
}
