package wasm

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tracemark/tracemark/internal/rt"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
	"golang.org/x/sys/cpu"
)

// instance is one instance of a module: its memory, its calls' state.
// A module has a pool of at most Limits.Instances of them, all in the
// module's runtime, made as concurrent calls need them.
//
// Instances of a module run on different cores at once: what a call
// writes is kept off the cache lines of other instances (the padding at
// both ends, and the counters on lines of their own), and mu, which
// callers looking for an idle instance read, off the lines a call writes.
type instance struct {
	_ cpu.CacheLinePad
	// mu is held for a call: the guest runs only while it is held, so the
	// fields below it are only touched with it held. An instance is idle
	// when mu is not held.
	mu sync.Mutex
	m  *Module
	n  int // 0 for the first
	// self is mod, for instanceOf, which reads it in every instance
	// without their locks: set before the instance is published, cleared
	// when it is released.
	self atomic.Pointer[api.Module]
	_    cpu.CacheLinePad

	released  bool
	published bool // counted in the pool's live instances
	mod       api.Module
	alloc     api.Function
	inPtr     uint32 // the last buffer tracemark_alloc gave, reused for inputs
	inCap     uint32 // up to this size (ABI v1 lets the host keep it)
	hooks     map[string]api.Function
	stack     [2]uint64
	mem       api.Memory // see memory
	memKnown  bool
	linmem    []*linearMemory // mapped memories, unmapped by releaseInstance
	budget    budget
	callErr   error // first ABI violation of the running call
	pending   counters
	budgetNs  atomic.Int64 // the running call's budget of CPU time and sleep
	slept     atomic.Int64 // ns the running call slept
	call      callDeadline
	stderr    *outputWriter
	flags     enabledFlags
	events    eventBuffer
	pages     atomic.Uint32

	// stats are the instance's counters: written by its calls only (with
	// mu held), summed over the instances when read (Module.counters).
	_     cpu.CacheLinePad
	stats instanceStats
	_     cpu.CacheLinePad
}

// instanceStats are an instance's counters. Only the call that holds the
// instance writes them, so an increment is a load and a store, not a
// locked add.
type instanceStats struct {
	calls, fired, delivered, dropped, errors atomic.Uint64
}

// add adds n to a counter of stats. Called with the instance's mu held.
func add(c *atomic.Uint64, n uint64) {
	if n > 0 {
		c.Store(c.Load() + n)
	}
}

// pool is a module's instances. A call takes an idle instance (locking
// it), or makes one while there are fewer than Limits.Instances, or waits
// for one. Taking and giving back an instance touches nothing shared but
// the instances' locks: no channel, no pool lock, unless callers wait.
type pool struct {
	m *Module
	// hints[p] is the instance that the last call on P p (the
	// scheduler's processor) took: a call tries it first, so that calls
	// from goroutines running at once on two Ps keep to an instance
	// each, without touching the other's lock. Only for pools of more
	// than one instance; a P beyond its length has no hint.
	hints   []instanceHint
	mu      sync.Mutex
	cond    sync.Cond // signalled when an instance is given back to waiting callers, growing drops, or the pool closes
	size    int
	all     []*instance // every instance made (released ones too); also in m.insts
	made    int
	growing int
	live    int          // instances not released
	closed  bool         // dead or unloading: no instance is made or lent
	shut    atomic.Bool  // closed, for calls
	waiters atomic.Int32 // callers waiting for an instance
	rtDone  bool
}

// instanceHint is a P's entry of pool.hints, on a cache line of its own:
// only calls on that P write it, and only when they take another
// instance than the one it names.
type instanceHint struct {
	_ cpu.CacheLinePad
	i atomic.Pointer[instance]
	_ cpu.CacheLinePad
}

func (p *pool) init(m *Module, size int) {
	p.m, p.size = m, size
	p.cond.L = &p.mu
	if size > 1 {
		p.hints = make([]instanceHint, min(runtime.GOMAXPROCS(0), maxHints))
	}
}

// maxHints bounds pool.hints: Ps beyond it look for an instance from the
// first.
const maxHints = 256

// hint returns the calling goroutine's P's hint, or nil. The goroutine
// may move to another P right after: the hint is then another P's, which
// costs a look at a busy instance's lock, not an error.
func (p *pool) hint() *instanceHint {
	if p.hints == nil {
		return nil
	}
	pid := rt.Pin()
	rt.Unpin()
	if uint(pid) >= uint(len(p.hints)) {
		return nil
	}
	return &p.hints[pid]
}

// acquire returns an instance for a call, locked.
func (m *Module) acquire(ctx context.Context) (*instance, error) {
	p := &m.pool
	if i := p.tryIdle(); i != nil {
		return p.lend(i)
	}
	if err := m.usable(); err != nil {
		return nil, err
	}
	n, grow, err := p.reserve()
	if err != nil {
		return nil, err
	}
	if grow {
		i, err := m.newInstance(ctx, n)
		p.mu.Lock()
		p.growing--
		p.cond.Broadcast()
		p.mu.Unlock()
		// newInstance released the instance if it failed, but the
		// runtime stays open while an instance is being made (see
		// closeRuntime), so the release could not close it: close it
		// now if the pool closed meanwhile and nothing is left.
		p.closeRuntime()
		if err != nil {
			return nil, err
		}
		i.mu.Lock()
		if h := p.hint(); h != nil {
			h.i.Store(i)
		}
		return p.lend(i)
	}
	// Every instance is busy and the pool is full: wait for one. The
	// count of waiters is raised before looking, and callers giving an
	// instance back read it after unlocking the instance, so that either
	// the look finds the instance or the caller giving it back signals.
	p.mu.Lock()
	p.waiters.Add(1)
	defer p.waiters.Add(-1)
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, m.gone()
		}
		if i := p.tryIdle(); i != nil {
			p.mu.Unlock()
			return p.lend(i)
		}
		p.cond.Wait()
	}
}

// tryIdle locks an idle instance and returns it, or nil if every
// instance is busy: the one its P's last call took if it is idle, else
// the first idle one, which becomes the P's hint. Calls from goroutines
// running at once on two Ps then keep to an instance each, its memory in
// their core's cache, and read no lock that the other writes at every
// call. (Always looking from the first instance, a call on the second
// loaded the first's lock at every call, and took the first whenever
// its goroutine was between two calls: the instances moved between the
// cores, and a call into echo from two goroutines cost 100-150 ns more
// CPU than from one.)
func (p *pool) tryIdle() *instance {
	ap := p.m.insts.Load()
	if ap == nil {
		return nil
	}
	h := p.hint()
	if h != nil {
		if i := h.i.Load(); i != nil && i.mu.TryLock() {
			if !i.released {
				return i
			}
			i.mu.Unlock()
		}
	}
	for _, i := range *ap {
		if i.mu.TryLock() {
			if !i.released {
				if h != nil && h.i.Load() != i {
					h.i.Store(i)
				}
				return i
			}
			i.mu.Unlock()
		}
	}
	return nil
}

// lend returns i, locked, for a call, unless the module died or began
// unloading just before it was taken.
func (p *pool) lend(i *instance) (*instance, error) {
	if p.shut.Load() || i.released {
		p.put(i)
		return nil, p.m.gone()
	}
	return i, nil
}

// gone is the error of a call into a module that died or is unloading.
func (m *Module) gone() error {
	if err := m.usable(); err != nil {
		return err
	}
	return fmt.Errorf("module %s: %w", m.name, ErrUnloaded)
}

// reserve says whether the caller should make instance n.
func (p *pool) reserve() (n int, grow bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, false, p.m.gone()
	}
	if len(p.all)+p.growing >= p.size {
		return 0, false, nil
	}
	p.growing++
	p.made++
	return p.made - 1, true, nil
}

// publish adds a new instance, just instantiated, to the pool, where the
// host functions find it (it is idle once its initialization unlocks it).
func (p *pool) publish(i *instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = append(p.all, i)
	p.live++
	i.published = true
	all := slices.Clone(p.all)
	p.m.insts.Store(&all)
}

// put gives back an instance after a call, or releases it if the module
// is gone. Called with i.mu held; unlocks it.
func (p *pool) put(i *instance) {
	i.mu.Unlock()
	// Unlocked before the test: if the pool closes after the test, close
	// finds the instance idle and releases it.
	if p.shut.Load() {
		// Release it, unless a caller took it meanwhile (lend releases
		// it then).
		if i.mu.TryLock() {
			p.releaseInstance(i)
			i.mu.Unlock()
		}
		return
	}
	if p.waiters.Load() > 0 {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

// releaseInstance closes an instance; the last one closes the runtime
// once the pool is closed. Called with i.mu held (or before the instance
// is shared).
func (p *pool) releaseInstance(i *instance) {
	if i.released {
		return
	}
	i.released = true
	if i.mod != nil {
		i.storePages()
		i.mod.Close(context.Background())
	}
	// After Close, which does not unmap (see linearMemory): wazero runs
	// no code of the instance from here on.
	i.unmapMemory()
	i.mod, i.mem = nil, nil
	i.self.Store(nil)
	i.flags = enabledFlags{}
	i.events = eventBuffer{}
	i.disarm()
	if i.published {
		p.mu.Lock()
		p.live--
		p.mu.Unlock()
	}
	p.closeRuntime()
}

// pages is the memory of the module's instances, as last seen.
func (p *pool) pages() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint32
	for _, i := range p.all {
		n += i.pages.Load()
	}
	return n
}

// count is how many instances are live.
func (p *pool) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live
}

// closeRuntime closes the module's runtime if the pool is closed, no
// instance is left and none is being made (its instantiation would fail,
// and the call that makes it with a confusing error).
func (p *pool) closeRuntime() {
	p.mu.Lock()
	done := p.closed && p.live == 0 && p.growing == 0 && !p.rtDone
	if done {
		p.rtDone = true
	}
	p.mu.Unlock()
	if done {
		p.m.closeRuntime(context.Background())
	}
}

// closeLocked closes the pool: no instance is made or lent from here on,
// and callers waiting for one give up. Called with mu held.
func (p *pool) closeLocked() {
	if !p.closed {
		p.closed = true
		p.shut.Store(true)
		p.cond.Broadcast()
	}
}

// close closes the pool after an instance died, releases the idle
// instances, and returns every instance (to stop their running calls).
func (p *pool) close() []*instance {
	p.mu.Lock()
	p.closeLocked()
	all := slices.Clone(p.all)
	p.mu.Unlock()
	// Busy instances are released when their calls end (put).
	for _, i := range all {
		if i.mu.TryLock() {
			p.releaseInstance(i)
			i.mu.Unlock()
		}
	}
	p.closeRuntime()
	return all
}

// freeze closes the pool for an unload and returns every instance, once
// no instance is being made.
func (p *pool) freeze() []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeLocked()
	for p.growing > 0 {
		p.cond.Wait()
	}
	return slices.Clone(p.all)
}

// shutdownLocked releases every instance; the caller holds all their
// locks (after freeze).
func (p *pool) shutdownLocked(all []*instance) {
	for _, i := range all {
		p.releaseInstance(i)
	}
	p.closeRuntime()
}

// shutdown releases every instance of a module whose load failed.
func (p *pool) shutdown() {
	all := p.freeze()
	for _, i := range all {
		i.mu.Lock()
		p.releaseInstance(i)
		i.mu.Unlock()
	}
	p.closeRuntime()
}

// instanceOf returns the instance that mod is. It runs in a host call
// of that instance, whose lock its caller holds, while other instances
// may be released: it reads their self, not their mod.
func (m *Module) instanceOf(mod api.Module) *instance {
	for _, i := range *m.insts.Load() {
		if p := i.self.Load(); p != nil && *p == mod {
			return i
		}
	}
	panic("tracemark: a host function called from an unknown instance")
}

// newInstance makes instance n of the module and initializes it: its
// start function, _initialize, and the ABI's exports, under
// Limits.InitTimeout. A module that dies or overruns there dies (the
// first instance's load fails). An instance that fails once published
// is released here, whatever the failure: when another instance died
// meanwhile, the pool's close found this one busy and left it to us.
func (m *Module) newInstance(ctx context.Context, n int) (_ *instance, err error) {
	h, lim := m.host, m.limits
	i := &instance{m: m, n: n, hooks: map[string]api.Function{}}
	share := lim
	if lim.Instances > 1 && lim.EventRate > 0 {
		// The module's budget is shared out among its instances.
		share.EventRate = lim.EventRate / float64(lim.Instances)
		share.EventBurst = max(1, lim.EventBurst/lim.Instances)
	}
	i.budget.reset(share, marker.Now())
	i.stderr = newOutputWriter(m.name, h.cfg.Output)
	name := m.name
	if n > 0 {
		name = fmt.Sprintf("%s#%d", m.name, n)
	}
	mcfg := wazero.NewModuleConfig().
		WithName(name).
		WithStartFunctions(). // _initialize is called below, under the deadline
		WithStdout(i.stderr).
		WithStderr(i.stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(i.nanosleep).
		WithRandSource(rand.Reader)

	i.mu.Lock()
	defer i.mu.Unlock()
	ictx, cancel := i.callContext(ctx, lim.InitTimeout)
	defer cancel()
	i.begin()
	where := func(what string) error { return fmt.Errorf("loading module %s: %s", m.name, what) }
	if n > 0 {
		where = func(what string) error { return fmt.Errorf("module %s: making instance %d: %s", m.name, n, what) }
	}
	mod, err := m.rt.InstantiateModule(experimental.WithMemoryAllocator(ictx, i.memoryAllocator()), m.compiled, mcfg)
	if err != nil {
		i.disarm()
		// wazero closed what it instantiated; the instance is not
		// published, so nothing releases it.
		i.unmapMemory()
		if !isRunError(err) {
			return nil, i.end(fmt.Errorf("%w: %w", where("instantiating"), err))
		}
		i.mod = nil
		return nil, i.end(i.callFailed(where("instantiating"), err, lim.InitTimeout))
	}
	i.mod = mod
	i.self.Store(&mod)
	m.pool.publish(i)
	defer func() {
		// Before the deferred unlock: i.mu is still held.
		if err != nil {
			m.pool.releaseInstance(i)
		}
	}()
	stop, ok := mod.ExportedGlobal(exportStop).(api.MutableGlobal)
	if !ok {
		return nil, i.end(where("instrumented module has no stop global"))
	}
	i.armStop(stop)
	if start := mod.ExportedFunction(exportStart); start != nil {
		if !sameSig(start.Definition(), nil, nil) {
			return nil, i.end(fmt.Errorf("%w: %w: start function has parameters or results", where("instantiating"), module.ErrNotWasm))
		}
		if err := i.run(ictx, start); err != nil {
			return nil, i.end(i.callFailed(where("instantiating"), err, lim.InitTimeout))
		}
	}
	if init := mod.ExportedFunction(module.ExportInitialize); init != nil {
		if err := i.run(ictx, init); err != nil {
			return nil, i.end(i.callFailed(where("initializing"), err, lim.InitTimeout))
		}
	}
	if f := mod.ExportedFunction(module.ExportAlloc); f != nil && sameSig(f.Definition(), allocParams, allocResults) {
		i.alloc = f
	}
	if f := mod.ExportedFunction(module.ExportFlags); f != nil && sameSig(f.Definition(), nil, flagsResults) {
		if err := i.run(ictx, f); err != nil {
			return nil, i.end(i.callFailed(where("asking for its enabled flags"), err, lim.InitTimeout))
		}
		i.setFlags(i.stack[0])
	}
	if f := mod.ExportedFunction(module.ExportEvents); f != nil && !m.unbatched && sameSig(f.Definition(), nil, flagsResults) {
		if err := i.run(ictx, f); err != nil {
			return nil, i.end(i.callFailed(where("asking for its event buffer"), err, lim.InitTimeout))
		}
		i.setEvents(i.stack[0])
	}
	// An ABI violation during initialization taints W but does not fail
	// the load: the module is there, and policy decides about it.
	i.end(nil)
	return i, nil
}

// slots returns the module's markers, for the host functions.
func (m *Module) slots() []*slot {
	if p := m.marks.Load(); p != nil {
		return *p
	}
	return nil
}
