package wasm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// MaxOutputBytes is the largest output a hook may return.
const MaxOutputBytes = 1 << 20

// The exports that wasmbin.Instrument adds: the global that stops the
// module at its next loop iteration, and its start function.
const (
	exportStop  = "tracemark.stop"
	exportStart = "tracemark.start"
)

// errStopped is the error of a call that returned after the host stopped
// it (it overran its deadline in a host call, or was being unloaded).
var errStopped = errors.New("stopped by the host")

// State is where a module is in its life.
type State uint8

const (
	// StateLoading: being instantiated; not listed yet.
	StateLoading State = iota
	// StateLive: loaded, and its markers are used.
	StateLive
	// StateRefused: loaded and callable, but policy refuses its markers
	// (they stay listed with the reason).
	StateRefused
	// StateDead: it trapped or overran a deadline. Its instance is gone,
	// calls fail with ErrDead, its markers stay listed as refused until it
	// is unloaded.
	StateDead
	// StateUnloaded: unloaded; its markers are removed.
	StateUnloaded
)

var stateNames = [...]string{"loading", "live", "refused", "dead", "unloaded"}

// String returns "loading", "live", "refused", "dead" or "unloaded".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// MarshalText encodes the state's name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// loadConfig is the configuration of one load (insmod), made by its
// options (see LoadOption and the With functions).
type loadConfig struct {
	// Force loads a module that fails the ABI check (no metadata, another
	// ABI version, imports the host does not offer), like insmod --force.
	// The module is tainted F; calls to functions the host does not offer
	// trap (taint D). Malformed metadata is refused even when forced.
	Force bool
	// Name names a forced module that has no metadata. LoadFile defaults
	// it from the file name.
	Name string
	// Policy overrides the host's policy for this module.
	Policy module.Policy
	// Limits override the host's limits for this module (zero fields
	// inherit).
	Limits Limits
	// NoEventBuffer: see WithoutEventBuffer.
	NoEventBuffer bool

	errs []error // invalid option values, reported by the load
}

// Module is a loaded module. Its methods are safe for concurrent use;
// each of its instances runs one call at a time (Limits.Instances, see
// the package documentation, Concurrency).
type Module struct {
	host    *Host
	name    string
	path    string
	info    *module.Modinfo // nil for a forced module without metadata
	sig     module.Signature
	forced  string // why the ABI check failed, if forced
	loaded  time.Time
	limits  Limits
	outTree bool
	listed  bool // guarded by host.mu

	// unbatched: the host does not take the module's event buffer.
	unbatched bool

	// The runtime and the compiled code, shared by the instances.
	rt       wazero.Runtime
	compiled wazero.CompiledModule   // released with the last instance
	cache    wazero.CompilationCache // the module's own, closed with it (nil: the host's)
	// releaseCode, if set, releases the bytes of the code compiled (its
	// entry in the disk cache), after the runtime is closed.
	releaseCode func()
	a           *module.Analysis
	pool        pool
	defineMu    sync.Mutex                  // one definition at a time
	marks       atomic.Pointer[[]*slot]     // m.markers, for the host functions
	insts       atomic.Pointer[[]*instance] // pool.all, for the host functions

	unloading atomic.Bool

	mu      sync.Mutex // guards the fields below; taken inside an instance's mu
	taint   module.Taint
	policy  module.Policy
	state   State
	refusal string
	death   string
	lastErr string
	markers []*slot // appended with defineMu and mu held

}

// counters sums the counters of the module's instances.
func (m *Module) counters() Stats {
	var s Stats
	if all := m.insts.Load(); all != nil {
		for _, i := range *all {
			st := &i.stats
			s.Calls += st.calls.Load()
			s.Fired += st.fired.Load()
			s.Delivered += st.delivered.Load()
			s.Dropped += st.dropped.Load()
			s.Errors += st.errors.Load()
		}
	}
	return s
}

type counters struct{ fired, delivered, dropped, errors uint64 }

func (h *Host) load(ctx context.Context, wasm []byte, path string, inTree bool, opts loadConfig) (_ *Module, err error) {
	lim := opts.Limits.or(h.limits)
	if lim.MemoryPages > 65536 {
		return nil, fmt.Errorf("loading module: memory limit of %d pages is over the 65536 of a 32-bit memory", lim.MemoryPages)
	}
	if len(wasm) > lim.MaxModuleBytes {
		return nil, fmt.Errorf("loading module: %w: %d bytes, limit %d", ErrTooBig, len(wasm), lim.MaxModuleBytes)
	}
	// The module's entry in the cache on disk, if there is one, holds it
	// checked and instrumented, and its compiled code.
	var comp *compilation
	if disk := h.diskCache(); disk != nil {
		var berr error
		if comp, berr = disk.begin(wasm); berr != nil {
			disk.fail("preparing to compile: %v", berr)
		}
	}
	defer func() {
		if comp != nil {
			comp.abort() // not compiled
		}
	}()
	h.phase("lookup")
	// What the module asks of the compiler is bounded before anything
	// else reads it closely (unless it was, under limits no larger).
	if comp == nil || !comp.hit(lim) {
		if err := checkCode(wasm, lim); err != nil {
			return nil, fmt.Errorf("loading module: %w", err)
		}
	}
	h.phase("check")
	a, err := module.Analyze(wasm, h.cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("loading module: %w", err)
	}
	h.phase("analyze")
	m := &Module{host: h, path: path, info: a.Modinfo, sig: a.Signature, limits: lim, policy: opts.Policy,
		outTree: !inTree, loaded: time.Now(), unbatched: opts.NoEventBuffer}
	m.pool.init(m, lim.Instances)
	switch {
	case a.Modinfo != nil:
		m.name = a.Modinfo.Name
	case errors.Is(a.ModinfoErr, module.ErrBadModinfo):
		// Metadata that does not parse is a broken or hostile file, not
		// an ABI question: not even --force loads it.
		return nil, fmt.Errorf("loading module: %w", a.ModinfoErr)
	default:
		m.name = opts.Name
		if m.name == "" {
			m.name = "module"
		}
	}
	if a.ABIErr != nil {
		if !opts.Force {
			return nil, fmt.Errorf("loading module %s: %w", m.name, a.ABIErr) // WithForce overrides; the agent says how
		}
		m.forced = a.ABIErr.Error()
	}
	if h.cfg.RequireSignature && a.Signature.State != module.Trusted {
		return nil, fmt.Errorf("loading module %s: %w: %s", m.name, ErrSignatureRequired, a.Signature)
	}
	if a.MemoryPages > lim.instancePages() {
		if lim.Instances > 1 {
			return nil, fmt.Errorf("loading module %s: %w: it needs %d pages at start, the limit is %d for each of %d instances (%d in all)", m.name, ErrMemoryLimit, a.MemoryPages, lim.instancePages(), lim.Instances, lim.MemoryPages)
		}
		return nil, fmt.Errorf("loading module %s: %w: it needs %d pages at start, the limit is %d", m.name, ErrMemoryLimit, a.MemoryPages, lim.MemoryPages)
	}
	exports := map[string]bool{}
	for _, e := range a.Exports {
		exports[e] = true
	}
	if exports["_start"] && !exports[module.ExportInitialize] {
		return nil, fmt.Errorf("loading module %s: %w: build it with -buildmode=c-shared", m.name, ErrNotReactor)
	}
	m.taint = a.Taint
	if m.outTree {
		m.taint |= module.TaintOutOfTree
	}

	// Reserve the name while loading.
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, fmt.Errorf("loading module %s: host closed", m.name)
	}
	if _, ok := h.modules[m.name]; ok {
		h.mu.Unlock()
		return nil, fmt.Errorf("loading module %s: %w", m.name, ErrExists)
	}
	h.modules[m.name] = m
	h.mu.Unlock()
	defer func() {
		if err != nil {
			m.discard()
		}
	}()

	code := comp.entryCode()
	if code == nil {
		if code, err = instrument(wasm); err != nil {
			return nil, fmt.Errorf("loading module %s: %w", m.name, err)
		}
	}
	h.phase("instrument")
	rcfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(false).
		WithMemoryLimitPages(lim.instancePages())
	var compiled wazero.CompiledModule
	if comp != nil {
		c := comp
		comp = nil // the module closes its cache
		compiled, err = m.compileCached(ctx, c, rcfg, code, checkedOf(lim), lim.CompileTimeout)
	} else {
		compiled, err = m.compileWith(ctx, rcfg.WithCompilationCache(h.cache), code, lim.CompileTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("loading module %s: compiling: %w", m.name, err)
	}
	m.compiled = compiled
	if err := context.Cause(ctx); err != nil {
		// The caller gave up (a client timeout): nothing of the module
		// has run yet.
		return nil, fmt.Errorf("loading module %s: %w", m.name, err)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, m.rt); err != nil {
		return nil, fmt.Errorf("loading module %s: WASI: %w", m.name, err)
	}
	if err := m.instantiateHost(ctx, a); err != nil {
		return nil, fmt.Errorf("loading module %s: %w", m.name, err)
	}

	// From here the module's code runs: taint the process, and decide
	// about its markers before it defines any.
	m.mu.Lock()
	m.recordLoadTaint()
	m.evaluate()
	m.mu.Unlock()

	h.phase("imports")

	m.a = a
	m.pool.made = 1
	first, err := m.newInstance(ctx, 0)
	if err != nil {
		return nil, err
	}
	h.phase("instantiate")
	first.mu.Lock()
	m.pool.put(first)

	m.mu.Lock()
	m.state = StateLive
	m.evaluate()
	m.mu.Unlock()
	h.mu.Lock()
	m.listed = true
	h.mu.Unlock()
	return m, nil
}

// instrument strips the module's metadata and instruments it: its loops
// check a global that the host sets to stop it (wasmbin.Instrument), not
// wazero's context check, which leaves compiled code at every loop
// iteration and starts a goroutine per call. It also joins the module's
// data segments where they are close (wasmbin.MergeData).
func instrument(wasm []byte) ([]byte, error) {
	code, err := module.StripMetadata(wasm)
	if err != nil {
		return nil, err
	}
	code, err = wasmbin.Instrument(code, exportStop, exportStart)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", module.ErrNotWasm, err)
	}
	// Go's tens of thousands of small data segments cost wazero more
	// to decode and write at each instantiation than their gaps.
	return wasmbin.MergeData(code), nil
}

// checkCode refuses a module whose code is over the limits of compiling.
func checkCode(wasm []byte, lim Limits) error {
	_, err := wasmbin.Check(wasm, wasmbin.CheckLimits{
		Functions:      lim.MaxFunctions,
		FunctionBytes:  lim.MaxFunctionBytes,
		Nesting:        lim.MaxNesting,
		Locals:         lim.MaxLocals,
		TableElements:  lim.MaxTableElements,
		BrTableTargets: lim.MaxBrTableTargets,
		Units:          lim.MaxCodeUnits,
		UnitsPerByte:   CodeUnitsPerByte,
	})
	var le *wasmbin.LimitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le):
		name := map[string]string{
			"functions": "MaxFunctions", "function bytes": "MaxFunctionBytes", "nesting": "MaxNesting",
			"locals": "MaxLocals", "table elements": "MaxTableElements", "br_table targets": "MaxBrTableTargets",
			"units": "MaxCodeUnits", "units per byte": "CodeUnitsPerByte",
		}[le.Limit]
		return &LimitError{Limit: name, Function: le.Func, Table: le.Table, Value: le.Value, Max: le.Max, msg: le.Error()}
	}
	return fmt.Errorf("%w: %v", module.ErrNotWasm, err)
}

// compile compiles the module's code under a deadline. wazero checks for
// cancellation only between functions, and only when it compiles with
// more than one worker: two workers it is (each function's cost is
// bounded by the limits checked before). A deadline that passes fails
// with ErrCompileTimeout, a caller that gives up with its cause.
func (m *Module) compile(ctx context.Context, code []byte, timeout time.Duration) (wazero.CompiledModule, error) {
	cctx, cancel := context.WithTimeoutCause(ctx, timeout, ErrCompileTimeout)
	defer cancel()
	cctx = experimental.WithCompilationWorkers(cctx, 2)
	if compileHook != nil {
		cctx = compileHook(cctx)
	}
	compiled, err := m.rt.CompileModule(cctx, code)
	if err != nil {
		if cause := context.Cause(cctx); cause != nil {
			if errors.Is(cause, ErrCompileTimeout) {
				return nil, fmt.Errorf("%w (%v)", ErrCompileTimeout, timeout)
			}
			return nil, cause
		}
		return nil, fmt.Errorf("%w: %v", module.ErrNotWasm, err)
	}
	return compiled, nil
}

// compileHook, if set, wraps the context that wazero compiles with:
// tests see where wazero is.
var compileHook func(context.Context) context.Context

var (
	allocParams  = []api.ValueType{api.ValueTypeI32}
	allocResults = []api.ValueType{api.ValueTypeI32}
	hookParams   = []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}
	hookResults  = []api.ValueType{api.ValueTypeI64}
	flagsResults = []api.ValueType{api.ValueTypeI64}
)

func sameSig(d api.FunctionDefinition, params, results []api.ValueType) bool {
	return string(d.ParamTypes()) == string(params) && string(d.ResultTypes()) == string(results)
}

// isRunError reports whether an instantiation error came from running the
// module's start function (a trap or an exit) rather than from checks.
func isRunError(err error) bool {
	var exit *sys.ExitError
	return errors.As(err, &exit) || strings.Contains(err.Error(), "wasm error:") || strings.Contains(err.Error(), "start function")
}

// recordLoadTaint taints the process with what the module is. Called with
// mu held.
func (m *Module) recordLoadTaint() {
	t := m.taint
	m.taint = 0
	for _, f := range t.Flags() {
		var why string
		switch f {
		case module.TaintProprietary:
			lic := ""
			if m.info != nil {
				lic = m.info.License
			}
			why = fmt.Sprintf("licence %q is not GPL-compatible", lic)
			if lic == "" {
				why = "no licence"
			}
		case module.TaintOutOfTree:
			why = "loaded from bytes, not from the trusted module directory"
			if m.path != "" {
				why = "loaded from " + m.path + ", outside the trusted module directory"
			}
		case module.TaintUnsigned:
			why = m.sig.String()
		case module.TaintForced:
			why = "force-loaded: " + m.forced
		}
		m.addTaint(f, why)
	}
}

// addTaint taints the module and the process. Called with mu held; the
// caller re-evaluates the policy.
func (m *Module) addTaint(t module.Taint, why string) {
	if t &^= m.taint; t == 0 {
		return
	}
	m.taint |= t
	module.AddTaint(t, m.name, why)
}

// evaluate applies the policy (or death) to the module's markers. Called
// with mu held.
func (m *Module) evaluate() {
	var reason string
	switch m.state {
	case StateDead:
		reason = "module " + m.name + " is dead: " + m.death
	case StateUnloaded:
		return
	default:
		if err := m.policy.Override(m.host.Policy()).Check(m.taint); err != nil {
			reason = "module " + m.name + " tainted " + m.taint.String() + ": " + err.Error()
		}
		if m.state != StateLoading {
			m.state = StateLive
			if reason != "" {
				m.state = StateRefused
			}
		}
	}
	if reason == m.refusal {
		return
	}
	m.refusal = reason
	for _, s := range m.markers {
		s.d.Refuse(reason)
	}
}

// run calls fn, with no arguments beyond m.stack, delivers the events
// the module batched (even if it trapped), and fails a call that
// returns after the host stopped it. Called with callMu held.
func (i *instance) run(ctx context.Context, fn api.Function) error {
	err := fn.CallWithStack(ctx, i.stack[:])
	i.drainEvents(i.mod)
	if err == nil && i.call.stopped.Load() {
		err = errStopped
	}
	return err
}

// wallTimeout is the wall-clock backstop of a call whose deadline is
// timeout of CPU time and sleep: ten times as long, plus ten seconds, so
// that a busy machine does not trip it.
func wallTimeout(timeout time.Duration) time.Duration {
	if !hasThreadClock {
		return timeout
	}
	return 10*timeout + 10*time.Second
}

// nanosleep sleeps for the module, but not past the running call's
// budget: time asleep counts as time running. A module that sleeps its
// budget away is stopped like one that overruns it.
func (i *instance) nanosleep(ns int64) {
	left := time.Duration(i.budgetNs.Load() - i.slept.Load())
	if d := time.Duration(ns); d < left {
		left = d
	} else if left > 0 {
		defer i.cancelCall()
	}
	if left > 0 {
		start := time.Now()
		time.Sleep(left)
		i.slept.Add(int64(time.Since(start)))
	}
}

// begin starts a call. Called with callMu held.
func (i *instance) begin() {
	i.callErr = nil
	i.stderr.reset()
}

// end finishes a call: publishes the counters and returns err, or the
// first ABI violation of the call. Called with callMu held.
func (i *instance) end(err error) error {
	m := i.m
	p := i.pending
	i.pending = counters{}
	if err == nil {
		err = i.callErr
	}
	if err != nil && i.callErr == nil {
		p.errors++
	}
	st := &i.stats
	add(&st.fired, p.fired)
	add(&st.delivered, p.delivered)
	add(&st.dropped, p.dropped)
	add(&st.errors, p.errors)
	i.storePages()
	i.callErr = nil
	if err != nil {
		m.mu.Lock()
		m.lastErr = err.Error()
		m.mu.Unlock()
	}
	return err
}

// storePages records the size of the module's memory for Status, if it
// has one. Called with callMu held.
func (i *instance) storePages() {
	if i.mod == nil || i.mod.IsClosed() {
		return
	}
	if mem := i.memory(i.mod); mem != nil {
		if n := mem.Size() / 65536; n != i.pages.Load() {
			i.pages.Store(n)
		}
	}
}

// memory returns the module's linear memory, or nil if it has none. A
// memory is optional: wazero then returns a nil *MemoryInstance in a
// non-nil api.Memory, which this turns into a nil interface. The answer is
// kept after the first call (it cannot change). Called with callMu held;
// mod is the module's instance (host functions get it before
// InstantiateModule returns).
func (i *instance) memory(mod api.Module) api.Memory {
	if !i.memKnown {
		i.mem = mod.Memory()
		if v := reflect.ValueOf(i.mem); !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
			i.mem = nil
		}
		i.memKnown = true
	}
	return i.mem
}

// read reads n bytes at ptr of mem, which may be nil (no memory: only an
// empty read succeeds).
func read(mem api.Memory, ptr, n uint32) ([]byte, bool) {
	if mem == nil || n == 0 {
		return nil, n == 0
	}
	return mem.Read(ptr, n)
}

// callFailed turns the error of a call into the module into ours, and
// kills the module if it trapped or overran. Called with callMu held.
func (i *instance) callFailed(ctxErr error, err error, timeout time.Duration) error {
	m := i.m
	if m.unloading.Load() {
		return fmt.Errorf("%w: %w", ctxErr, ErrUnloaded)
	}
	m.mu.Lock()
	dead, death := m.state == StateDead, m.death
	m.mu.Unlock()
	if dead {
		// Another instance died, and the host stopped this one.
		return fmt.Errorf("%w: %w: %s", ctxErr, ErrDead, death)
	}
	var exit *sys.ExitError
	var e error
	flag := module.TaintDied
	switch {
	case i.call.stopped.Load():
		// A trap after the host set the stop global is the deadline's.
		flag = module.TaintOverran
		e = fmt.Errorf("%w: %w (%v); the module was killed", ctxErr, ErrDeadline, timeout)
	case errors.As(err, &exit):
		e = fmt.Errorf("%w: %w: exited with status %d%s", ctxErr, ErrTrap, exit.ExitCode(), i.stderr.hint())
	default:
		msg, _, _ := strings.Cut(err.Error(), "\n")
		e = fmt.Errorf("%w: %w: %s%s", ctxErr, ErrTrap, msg, i.stderr.hint())
	}
	m.die(i, flag, e)
	return e
}

// die marks the module dead after instance i trapped or overran: every
// instance is released, and the calls running in the others are stopped
// (they fail with ErrDead). Called with i.mu held.
func (m *Module) die(i *instance, flag module.Taint, err error) {
	i.storePages()
	m.mu.Lock()
	if m.state == StateDead || m.state == StateUnloaded {
		// Another instance died first, or the module is being unloaded.
		m.mu.Unlock()
		m.pool.releaseInstance(i)
		return
	}
	m.state = StateDead
	m.death = err.Error()
	m.addTaint(flag, err.Error())
	m.evaluate()
	m.mu.Unlock()
	m.pool.releaseInstance(i)
	for _, o := range m.pool.close() {
		o.cancelCall()
	}
	h := m.host
	h.mu.Lock()
	listed := m.listed
	h.mu.Unlock()
	if listed && h.cfg.UnloadDead {
		// Not here: the caller holds i.mu.
		go m.unload(context.Background(), true, false)
	}
}

// closeRuntime closes the module's runtime and gives its compiled code
// back to the compilation cache, which frees it when no other module
// uses it. Called once, when the last instance is released.
func (m *Module) closeRuntime(ctx context.Context) {
	if m.rt != nil {
		m.rt.Close(ctx)
	}
	if m.compiled != nil {
		m.compiled.Close(ctx)
	}
	if m.cache != nil {
		m.cache.Close(ctx)
	}
	if m.releaseCode != nil {
		m.releaseCode()
	}
}

// discard removes a module whose load failed: its markers and its name.
func (m *Module) discard() {
	m.pool.shutdown()
	m.mu.Lock()
	for _, s := range m.markers {
		s.d.Remove()
	}
	m.markers = nil
	m.state = StateUnloaded
	m.mu.Unlock()
	h := m.host
	h.mu.Lock()
	if h.modules[m.name] == m {
		delete(h.modules, m.name)
		h.retire(m)
	}
	h.mu.Unlock()
}

// usable returns why the module cannot be called, or nil. Called with
// callMu held.
func (m *Module) usable() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case StateDead:
		return fmt.Errorf("module %s: %w: %s", m.name, ErrDead, m.death)
	case StateUnloaded:
		return fmt.Errorf("module %s: %w", m.name, ErrUnloaded)
	}
	return nil
}

// Name returns the module's name.
func (m *Module) Name() string { return m.name }

// Call calls the module's hook export with in and returns its output
// (copied out of the module's memory). A hook has the ABI v1 signature
// hook(ptr i32, len i32) -> i64: the host copies in into a buffer from the
// module's tracemark_alloc export (reused while inputs fit in it), calls
// the hook, and reads the output at ptr<<32|len of the result.
//
// The call runs under the module's deadline, not under ctx's cancellation
// (a caller that gives up must not kill the module); ctx's values are
// passed on. It fails with an error wrapping ErrTrap, ErrDeadline or
// ErrABIViolation if the module misbehaved (see the package
// documentation for what happens to the module), ErrDead or ErrUnloaded
// if it is gone, ErrNoExport if there is no such hook. After an ABI
// violation inside a hook that returned, the hook's output is returned
// with the error. Probes of the module's markers run during the call and
// must not call into the same module. The call runs in an idle instance
// of the module's pool, in a new one if all are busy and the pool is not
// full (making it runs the module's initializer), or waits for one.
func (m *Module) Call(ctx context.Context, hook string, in []byte) ([]byte, error) {
	out, err := m.AppendCall(ctx, nil, hook, in)
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

// AppendCall is Call that appends the hook's output to dst and returns the
// extended slice (dst as it was if the hook returned nothing or the call
// failed). A caller that calls on every request and reuses its buffer,
// out, err = m.AppendCall(ctx, out[:0], hook, in), makes no garbage per
// call: from two goroutines the collector of Call's copies takes CPU
// from the calls.
func (m *Module) AppendCall(ctx context.Context, dst []byte, hook string, in []byte) ([]byte, error) {
	i, err := m.acquire(ctx)
	if err != nil {
		return dst, err
	}
	defer m.pool.put(i)
	return i.callHook(ctx, dst, hook, in)
}

// callHook is AppendCall in instance i. Called with i.mu held.
func (i *instance) callHook(ctx context.Context, dst []byte, hook string, in []byte) ([]byte, error) {
	m := i.m
	fn, err := i.hook(hook)
	if err != nil {
		return dst, err
	}
	if len(in) > 0 && i.alloc == nil && uint32(len(in)) > i.inCap {
		return dst, fmt.Errorf("module %s: calling %s with input: %w: %s (i32) -> i32", m.name, hook, ErrNoExport, module.ExportAlloc)
	}
	i.syncFlags(i.mod, false)
	cctx, cancel := i.callContext(ctx, m.limits.CallTimeout)
	defer cancel()
	i.begin()
	add(&i.stats.calls, 1)
	where := callError{m.name, hook}
	ptr := i.inPtr
	if len(in) > 0 {
		if uint32(len(in)) > i.inCap {
			i.stack[0] = uint64(len(in))
			if err := i.run(cctx, i.alloc); err != nil {
				return dst, i.end(i.callFailed(where, err, m.limits.CallTimeout))
			}
			ptr = uint32(i.stack[0])
			i.inPtr, i.inCap = ptr, uint32(len(in))
		}
		if mem := i.memory(i.mod); mem == nil || !mem.Write(ptr, in) {
			i.inCap = 0
			i.violate(module.ResultFault, ErrOutOfBounds, "%s returned %d bytes at %#x, outside memory", module.ExportAlloc, len(in), ptr)
			return dst, i.end(nil)
		}
	}
	i.stack[0], i.stack[1] = uint64(ptr), uint64(len(in))
	if err := i.run(cctx, fn); err != nil {
		return dst, i.end(i.callFailed(where, err, m.limits.CallTimeout))
	}
	out := dst
	if res := i.stack[0]; uint32(res) != 0 {
		p, n := uint32(res>>32), uint32(res)
		if n > MaxOutputBytes {
			i.violate(module.ResultTooBig, ErrTooLarge, "%s returned %d bytes of output, limit %d", hook, n, MaxOutputBytes)
			return dst, i.end(nil)
		}
		b, ok := read(i.memory(i.mod), p, n)
		if !ok {
			i.violate(module.ResultFault, ErrOutOfBounds, "%s returned %d bytes of output at %#x, outside memory", hook, n, p)
			return dst, i.end(nil)
		}
		out = append(dst, b...)
	}
	return out, i.end(nil)
}

// callError is the context of a call's error, formatted only if there is
// one.
type callError struct{ module, hook string }

func (e callError) Error() string { return "module " + e.module + ": calling " + e.hook }

// hook finds a hook export. Called with callMu held.
func (i *instance) hook(name string) (api.Function, error) {
	m := i.m
	if fn, ok := i.hooks[name]; ok {
		return fn, nil
	}
	fn := i.mod.ExportedFunction(name)
	if fn == nil {
		return nil, fmt.Errorf("module %s: %w: %q", m.name, ErrNoExport, name)
	}
	if !sameSig(fn.Definition(), hookParams, hookResults) {
		return nil, fmt.Errorf("module %s: %w: %q is not (i32, i32) -> i64", m.name, ErrNoExport, name)
	}
	i.hooks[name] = fn
	return fn, nil
}

// Hooks returns the names of the module's exports that have the hook
// signature.
func (m *Module) Hooks() []string {
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	if m.pool.closed {
		return nil
	}
	var out []string
	for name, def := range m.compiled.ExportedFunctions() {
		if sameSig(def, hookParams, hookResults) {
			out = append(out, name)
		}
	}
	return out
}

// violate records an ABI violation by the module and returns the error
// code for the guest. The first violation of a call taints the module W,
// re-applies the policy, and becomes the call's error. Called with callMu
// held.
func (i *instance) violate(code int32, kind error, format string, args ...any) uint64 {
	m := i.m
	i.pending.errors++
	if i.callErr == nil {
		i.callErr = fmt.Errorf("module %s: %w: %w: %s", m.name, ErrABIViolation, kind, fmt.Sprintf(format, args...))
		m.mu.Lock()
		m.addTaint(module.TaintWarning, i.callErr.Error())
		m.evaluate()
		m.mu.Unlock()
	}
	return uint64(uint32(code))
}

// Unload unloads the module (rmmod): it stops its instance and removes its
// markers. Without force it waits for a running call to end, and refuses
// with ErrInUse while any of its markers has probes. With force it
// unloads anyway, stopping a running call, and taints the module and
// the process R if it had to.
//
// A module with no call running is unloaded at once, even if ctx is done.
// The wait for running calls ends when ctx is done, and in any case after
// the wall-time backstop of the module's longest deadline (see
// Limits.CallTimeout; the call's, or an instance initialization's) plus
// 10 s, 70 s with the default limits: a call still running then is
// one the host could not stop (a probe that does not return, or a fault
// of the sandbox). Unload then fails with ErrCallStuck (wrapping ctx's
// error if ctx ended first); the module takes no new call, and is
// unloaded when its calls end.
func (m *Module) Unload(ctx context.Context, force bool) error {
	return m.unload(ctx, force, true)
}

// stopGrace is how long an unload gives a call to end once the call is
// stopped (by its deadline or by a forced unload): a stopped module traps
// at its next stop check, within microseconds; only a probe that does not
// return, or a fault of the sandbox, holds it longer.
const stopGrace = 10 * time.Second

// unloadWait is the longest an unload of a module with limits l waits for
// its running calls (see Module.Unload): the wall-time backstop of the
// longest deadline plus stopGrace.
func unloadWait(l Limits) time.Duration {
	return wallTimeout(max(l.CallTimeout, l.InitTimeout)) + stopGrace
}

func (m *Module) unload(ctx context.Context, force, taintR bool) error {
	inUse := m.inUse()
	if len(inUse) > 0 && !force {
		return fmt.Errorf("unloading %s: %w: probes are connected to %s", m.name, ErrInUse, strings.Join(inUse, ", "))
	}
	// No instance is made from here on; wait for those being made.
	all := m.pool.freeze()
	// A module with no call running is unloaded at once, whatever ctx:
	// its instances stay locked from here to the unload's end.
	locked := tryLockAll(all)
	if locked == len(all) {
		return m.unloadLocked(all, force, taintR, false, inUse)
	}
	for _, i := range all[:locked] {
		i.mu.Unlock()
	}
	// The wait for the running calls, and the unload after it, run on a
	// goroutine of their own, so that a call that never ends (which a
	// mutex cannot time out on) fails the unload instead of hanging it;
	// the unload then completes whenever the call ends.
	done := make(chan error, 1)
	go func() { done <- m.unloadWhenIdle(all, force, taintR, inUse) }()
	t := time.NewTimer(unloadWait(m.limits))
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("unloading %s: %w after %v", m.name, ErrCallStuck, unloadWait(m.limits))
	case <-ctx.Done():
		select {
		case err := <-done: // both ready: the unload is done
			return err
		default:
		}
		return fmt.Errorf("unloading %s: %w: %w", m.name, ErrCallStuck, ctx.Err())
	}
}

// tryLockAll locks the instances in order while none is busy, and returns
// how many it locked: len(all) if no call runs.
func tryLockAll(all []*instance) int {
	for n, i := range all {
		if !i.mu.TryLock() {
			return n
		}
	}
	return len(all)
}

// unloadWhenIdle unloads the module, frozen, once the calls running in
// its instances all (found busy) end, stopping them if force.
func (m *Module) unloadWhenIdle(all []*instance, force, taintR bool, inUse []string) error {
	if force {
		m.unloading.Store(true)
		for _, i := range all {
			i.cancelCall()
		}
	}
	// Hold every instance: running calls end first.
	for _, i := range all {
		i.mu.Lock()
	}
	return m.unloadLocked(all, force, taintR, true, inUse)
}

// unloadLocked unloads the module, frozen, whose instances all are
// locked; it unlocks them. busy says whether a call was running when the
// unload began.
func (m *Module) unloadLocked(all []*instance, force, taintR, busy bool, inUse []string) error {
	defer func() {
		for _, i := range all {
			i.mu.Unlock()
		}
	}()
	m.mu.Lock()
	if m.state == StateUnloaded {
		m.mu.Unlock()
		return fmt.Errorf("unloading %s: %w", m.name, ErrUnloaded)
	}
	m.unloading.Store(true)
	if force && taintR && (busy || len(inUse) > 0) {
		why := "force-unloaded while in use by probes of " + strings.Join(inUse, ", ")
		if busy {
			why = "force-unloaded during a call"
		}
		m.addTaint(module.TaintForceUnloaded, why)
	}
	m.state = StateUnloaded
	markers := m.markers
	m.mu.Unlock()
	m.pool.shutdownLocked(all)
	for _, s := range markers {
		s.d.Remove()
	}
	h := m.host
	h.mu.Lock()
	if h.modules[m.name] == m {
		delete(h.modules, m.name)
		h.retire(m)
	}
	h.mu.Unlock()
	return nil
}

// inUse returns the names of the module's markers that have probes.
func (m *Module) inUse() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, s := range m.markers {
		if s.d.Info().ProbeCount() > 0 {
			out = append(out, s.d.Info().Name())
		}
	}
	return out
}

// SetPolicy overrides the host's policy for this module
// (module.PolicyDefault to follow the host again) and applies it at once.
func (m *Module) SetPolicy(p module.Policy) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policy = p
	m.evaluate()
}

// TaintUser taints the module (and the process) U on an operator's
// request, and re-applies the policy: every policy but open then refuses
// its markers.
func (m *Module) TaintUser(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addTaint(module.TaintUser, reason)
	m.evaluate()
}

// Markers returns the markers the module defined.
func (m *Module) Markers() []*marker.Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*marker.Info, len(m.markers))
	for i, s := range m.markers {
		out[i] = s.d.Info()
	}
	return out
}
