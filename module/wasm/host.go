package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tracemark/tracemark/internal/cachedir"
	"github.com/tracemark/tracemark/module"
)

// Limits bound what a module may use (WithLimits, WithLoadLimits). Zero
// fields take the defaults shown; in WithLoadLimits, the host's values.
type Limits struct {
	// MemoryPages caps the module's linear memory, in 64 KiB pages.
	// Default 1024 (64 MiB). Growing past it fails inside the module (a Go
	// module then dies of "out of memory": taint D).
	MemoryPages uint32 `json:"memory_pages"`
	// CallTimeout is the deadline of every call into the module, in CPU
	// time of the thread that runs the call (the module's code, and the
	// host's work for its events, probes included) plus the time the
	// module sleeps: not the time it waits for a CPU on a busy machine. A
	// call also may not last more than ten times CallTimeout plus ten
	// seconds of wall time, a backstop. A call that overruns either kills
	// the module (taint L). Default 100ms. On systems without a
	// per-thread CPU clock (other than Linux) it is wall time.
	CallTimeout time.Duration `json:"call_timeout_ns"`
	// InitTimeout is the deadline of instantiation and the module's
	// initializer, measured like CallTimeout. Default 5s.
	InitTimeout time.Duration `json:"init_timeout_ns"`
	// EventRate is the module's sustained event budget per second, and
	// EventBurst the events it may fire at once. Events over the budget
	// are dropped and counted; only events that have a probe count.
	// Defaults 100000 and 10000; a negative EventRate means no budget.
	EventRate  float64 `json:"event_rate"`
	EventBurst int     `json:"event_burst"`
	// MaxMarkers caps how many markers the module may define. Default 256.
	MaxMarkers int `json:"max_markers"`
	// MaxModuleBytes caps the size of a module file. Default 64 MiB.
	MaxModuleBytes int `json:"max_module_bytes"`
	// Instances is how many instances of the module may run calls at
	// once: a pool, made as concurrent calls need them, each with its own
	// memory. The module's MemoryPages and event budget are shared out
	// equally among them (each may grow to MemoryPages/Instances pages).
	// A trap or an overrun in any instance kills the module: its other
	// calls are stopped and fail with ErrDead. Default 1.
	Instances int `json:"instances"`

	// The limits below bound the work of compiling a module. They are
	// checked by reading the module before it is compiled: a module over
	// one is refused with a *LimitError (wrapping ErrCodeLimit) that
	// names it. The defaults admit Go modules of about 10 MB. See the
	// package documentation, "Compiling".

	// MaxFunctions caps the module's functions, imported and defined.
	// Default 100000.
	MaxFunctions int `json:"max_functions"`
	// MaxFunctionBytes caps the size of one function's body. Default 1 MiB.
	MaxFunctionBytes int `json:"max_function_bytes"`
	// MaxNesting caps how deep blocks nest in one function. Default 2048
	// (Go nests them as deep as a function has resume points).
	MaxNesting int `json:"max_nesting"`
	// MaxLocals caps the locals one function declares. Default 50000.
	MaxLocals int `json:"max_locals"`
	// MaxBrTableTargets caps the targets of one br_table instruction.
	// Default 4096.
	MaxBrTableTargets int `json:"max_br_table_targets"`
	// MaxTableElements caps the initial size of every table, and its
	// maximum size if the module grows tables (a table without a maximum
	// then counts as 2^32-1). Default 1<<20.
	MaxTableElements int `json:"max_table_elements"`
	// MaxCodeUnits caps the module's compile work in units: about one
	// per instruction, local and section entry, more for functions,
	// br_table targets and deep nesting (about a microsecond of compiling
	// each). A module may also have at most CodeUnitsPerByte units per
	// byte of its file. Default 4 million.
	MaxCodeUnits int `json:"max_code_units"`
	// CompileTimeout is the wall-clock deadline of compiling the module, a
	// backstop for what the limits above do not foresee; compilation
	// stops between functions. It is generous so that a busy machine does
	// not trip it: default 2 minutes (a Go module of 2.7 MB compiles in
	// about a second, ten times slower with the race detector, slower
	// still on a loaded machine).
	CompileTimeout time.Duration `json:"compile_timeout_ns"`
}

// instancePages is the memory cap of each instance.
func (l Limits) instancePages() uint32 {
	return l.MemoryPages / uint32(max(1, l.Instances))
}

// CodeUnitsPerByte is how many units of compile work (Limits.MaxCodeUnits)
// a module may have per byte of its file, whatever its shape: the work of
// compiling it then grows with its size. Go modules have about 0.4.
const CodeUnitsPerByte = 4

// DefaultLimits are the limits of a host that sets none.
var DefaultLimits = Limits{
	MemoryPages:    1024,
	CallTimeout:    100 * time.Millisecond,
	InitTimeout:    5 * time.Second,
	EventRate:      100_000,
	EventBurst:     10_000,
	MaxMarkers:     256,
	MaxModuleBytes: module.MaxFileBytes,
	Instances:      1,

	MaxFunctions:      100_000,
	MaxFunctionBytes:  1 << 20,
	MaxNesting:        2048,
	MaxLocals:         50_000,
	MaxBrTableTargets: 4096,
	MaxTableElements:  1 << 20,
	MaxCodeUnits:      4_000_000,
	CompileTimeout:    2 * time.Minute,
}

// or returns l with its zero fields taken from d.
func (l Limits) or(d Limits) Limits {
	if l.MemoryPages == 0 {
		l.MemoryPages = d.MemoryPages
	}
	if l.CallTimeout == 0 {
		l.CallTimeout = d.CallTimeout
	}
	if l.InitTimeout == 0 {
		l.InitTimeout = d.InitTimeout
	}
	if l.EventRate == 0 {
		l.EventRate = d.EventRate
	}
	if l.EventBurst == 0 {
		l.EventBurst = d.EventBurst
	}
	if l.MaxMarkers == 0 {
		l.MaxMarkers = d.MaxMarkers
	}
	if l.MaxModuleBytes == 0 {
		l.MaxModuleBytes = d.MaxModuleBytes
	}
	if l.Instances <= 0 {
		l.Instances = d.Instances
	}
	for _, f := range []struct{ v, d *int }{
		{&l.MaxFunctions, &d.MaxFunctions}, {&l.MaxFunctionBytes, &d.MaxFunctionBytes},
		{&l.MaxNesting, &d.MaxNesting}, {&l.MaxLocals, &d.MaxLocals},
		{&l.MaxBrTableTargets, &d.MaxBrTableTargets}, {&l.MaxTableElements, &d.MaxTableElements},
		{&l.MaxCodeUnits, &d.MaxCodeUnits},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if l.CompileTimeout == 0 {
		l.CompileTimeout = d.CompileTimeout
	}
	return l
}

// hostConfig is a Host's configuration, made by NewHost's options (see
// HostOption and the With functions).
type hostConfig struct {
	// Policy is the process-wide policy; modules may override it.
	Policy module.Policy
	// TrustedDir is the host's module directory: modules loaded from a
	// file under it are in-tree (no taint O).
	TrustedDir string
	// Keys are the signers the host trusts (no taint E).
	Keys module.Keyring
	// RequireSignature refuses modules that are not signed by a trusted
	// key, like the kernel's module.sig_enforce.
	RequireSignature bool
	// Limits are the default limits of every module.
	Limits Limits
	// CacheDir is the directory of the host's compilation cache on disk,
	// which spares compiling a module again after it was unloaded or the
	// process restarted. Default: "compiled" in tracemark's cache
	// directory ($TRACEMARK_CACHE_DIR, else tracemark in the user's cache
	// directory). Entries are authenticated with a key kept in the
	// directory, readable only by its user; the host refuses a directory
	// that another user owns or may write to. A cache that cannot be used
	// costs only compiling: the host works without it and says why in
	// CacheStats and on Log. A test binary (testing.Testing) has no cache
	// on disk unless CacheDir or $TRACEMARK_CACHE_DIR is set, so that
	// tests never write into the user's.
	CacheDir string
	// CacheBytes bounds the cache on disk: after storing an entry the
	// host removes the least recently used ones until the cache fits.
	// Default DefaultCacheBytes.
	CacheBytes int64
	// NoDiskCache keeps compiled modules in memory only.
	NoDiskCache bool
	// Cache is a wazero compilation cache to share instead of the cache
	// on disk (which is then not used): the caller answers for what it
	// holds.
	Cache wazero.CompilationCache
	// Log receives the host's own messages, one line each: what went wrong
	// with the compilation cache. If nil they are discarded.
	Log io.Writer
	// Output receives the modules' stdout and stderr, each line prefixed
	// with the module's name. If nil it is discarded (the host still keeps
	// the start of a dying module's stderr for the error).
	Output io.Writer
	// UnloadDead unloads a module as soon as it dies (its markers are then
	// removed), instead of keeping it listed as dead until it is unloaded.
	UnloadDead bool

	errs []error // invalid option values, reported by NewHost
}

// Host loads modules into sandboxes and keeps the registry of loaded
// modules: what insmod, rmmod, lsmod and taint act on. Its methods are
// safe for concurrent use.
type Host struct {
	cfg       hostConfig
	limits    Limits
	trusted   string                  // resolved TrustedDir
	cache     wazero.CompilationCache // in memory, when disk is nil
	ownsCache bool
	wantDisk  bool
	diskOnce  sync.Once
	disk      *diskCache // once opened
	noDisk    string     // why disk is nil
	policy    atomic.Uint32

	wdOnce sync.Once
	wd     *watchdog

	mu      sync.Mutex
	modules map[string]*Module
	closed  bool

	retired Stats // the counters of the modules no longer in modules; guarded by mu

	// onPhase, if set, is called at the end of each phase of a load with
	// its name: benchmarks time the phases.
	onPhase func(phase string)
}

// phase marks the end of a phase of a load (see onPhase).
func (h *Host) phase(name string) {
	if h.onPhase != nil {
		h.onPhase(name)
	}
}

// NewHost makes a host. It fails if an option's value is invalid, or if
// the trusted directory (WithTrustedDir) cannot be used; a cache
// directory that cannot be used only turns the disk cache off (see
// Host.CacheStats).
func NewHost(opts ...HostOption) (*Host, error) {
	var cfg hostConfig
	for _, o := range opts {
		if o != nil {
			o.applyHost(&cfg)
		}
	}
	if len(cfg.errs) > 0 {
		return nil, fmt.Errorf("module host: %w", cfg.errs[0])
	}
	h := &Host{cfg: cfg, limits: cfg.Limits.or(DefaultLimits), modules: map[string]*Module{}}
	h.policy.Store(uint32(cfg.Policy.Resolve()))
	if cfg.TrustedDir != "" {
		dir, err := filepath.Abs(cfg.TrustedDir)
		if err == nil {
			dir, err = filepath.EvalSymlinks(dir)
		}
		if err != nil {
			return nil, fmt.Errorf("trusted module directory: %w", err)
		}
		h.trusted = dir
	}
	switch {
	case cfg.Cache != nil:
		h.cache, h.noDisk = cfg.Cache, "the host was given a compilation cache (Config.Cache)"
	case cfg.NoDiskCache:
		h.noDisk = "disabled by Config.NoDiskCache"
	default:
		h.wantDisk = true // opened at the first load
	}
	if h.cache == nil {
		// For compiling without the disk cache.
		h.cache, h.ownsCache = wazero.NewCompilationCache(), true
	}
	return h, nil
}

// defaultHost is made by DefaultHost. It is not a package-level
// sync.OnceValues(NewHost): that initializer would make the whole sandbox
// reachable from package initialization, and link wazero's compiler into
// every program that merely imports this package for its types (such as
// programs using package agent, which does not load modules unless asked).
var (
	defaultHostOnce sync.Once
	defaultHost     *Host
)

// DefaultHost returns the process's default host, made on first use with
// no option. Programs that need trusted keys, a module directory or
// other limits make their own with NewHost.
func DefaultHost() *Host {
	defaultHostOnce.Do(func() {
		defaultHost, _ = NewHost() // NewHost cannot fail without options
	})
	return defaultHost
}

// LoadFile loads a module file into the default host: the one-liner for
// programs that load a plugin at start-up.
func LoadFile(ctx context.Context, path string, opts ...LoadOption) (*Module, error) {
	return DefaultHost().LoadFile(ctx, path, opts...)
}

// Policy returns the process-wide policy.
func (h *Host) Policy() module.Policy { return module.Policy(h.policy.Load()) }

// SetPolicy changes the process-wide policy and applies it at once to
// every loaded module without its own.
func (h *Host) SetPolicy(p module.Policy) {
	h.policy.Store(uint32(p.Resolve()))
	for _, m := range h.Modules() {
		m.mu.Lock()
		m.evaluate()
		m.mu.Unlock()
	}
}

// Limits returns the host's default limits.
func (h *Host) Limits() Limits { return h.limits }

// Module returns the loaded module with the name, or nil.
func (h *Host) Module(name string) *Module {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.modules[name]; m != nil && m.listed {
		return m
	}
	return nil
}

// Modules returns the loaded modules in name order.
func (h *Host) Modules() []*Module {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*Module
	for _, m := range h.modules {
		if m.listed {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *Module) int { return strings.Compare(a.name, b.name) })
	return out
}

// List returns the status of every loaded module: what lsmod prints.
func (h *Host) List() List {
	var l List
	for _, m := range h.Modules() {
		l = append(l, m.Status())
	}
	return l
}

// Unload unloads the named module (rmmod); see Module.Unload.
func (h *Host) Unload(ctx context.Context, name string, force bool) error {
	m := h.Module(name)
	if m == nil {
		return fmt.Errorf("unloading %s: %w", name, ErrNotLoaded)
	}
	return m.Unload(ctx, force)
}

// Stats are event and call counters.
type Stats struct {
	// Calls counts calls into modules by the host.
	Calls uint64 `json:"calls"`
	// Fired counts valid fire calls, with or without probes. A module
	// with enabled flags (the guest SDK) does not call fire for a marker
	// it sees disabled: those events are not counted.
	Fired uint64 `json:"fired"`
	// Delivered counts events delivered to probes.
	Delivered uint64 `json:"delivered"`
	// Dropped counts events over a module's budget.
	Dropped uint64 `json:"dropped"`
	// Errors counts failed calls and ABI violations.
	Errors uint64 `json:"errors"`
}

// Stats returns the host's totals over every module it ever loaded.
func (h *Host) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.retired
	for _, m := range h.modules {
		s.add(m.counters())
	}
	return s
}

func (s *Stats) add(o Stats) {
	s.Calls += o.Calls
	s.Fired += o.Fired
	s.Delivered += o.Delivered
	s.Dropped += o.Dropped
	s.Errors += o.Errors
}

// retire adds the counters of a module, removed from modules, to the
// host's (its instances run no more calls). Called with mu held.
func (h *Host) retire(m *Module) {
	h.retired.add(m.counters())
}

// openDiskCache opens the host's compilation cache on disk, or says why
// there is none.
func (h *Host) openDiskCache() {
	dir := h.cfg.CacheDir
	if dir == "" {
		if testing.Testing() && os.Getenv(cachedir.Env) == "" {
			h.noDisk = "a test binary without " + cachedir.Env
			return
		}
		var err error
		if dir, err = cachedir.Dir("compiled"); err != nil {
			h.noDisk = "no cache directory: " + err.Error()
			return
		}
	}
	max := h.cfg.CacheBytes
	if max <= 0 {
		max = DefaultCacheBytes
	}
	c, err := openDiskCache(dir, max, h.cfg.Log)
	if err != nil {
		h.noDisk = fmt.Sprintf("cannot use %s: %v", dir, err)
		if h.cfg.Log != nil {
			fmt.Fprintf(h.cfg.Log, "tracemark: compilation cache: %s; compiling every module it loads\n", h.noDisk)
		}
		return
	}
	h.disk = c
}

// diskCache returns the host's cache on disk, opening it the first time,
// or nil.
func (h *Host) diskCache() *diskCache {
	if h.wantDisk {
		h.diskOnce.Do(h.openDiskCache)
	}
	return h.disk
}

// CacheStats returns the counters of the host's compilation cache on
// disk (opening it if no module was loaded yet).
func (h *Host) CacheStats() CacheStats {
	if h.diskCache() == nil {
		return CacheStats{Disabled: h.noDisk}
	}
	return h.disk.stats()
}

// Close force-unloads every module and releases the compilation cache if
// the host made it. The process taint stays. It waits for the modules'
// running calls as Module.Unload does, all modules at once: a call that
// does not end in time makes Close fail with ErrCallStuck instead of
// hanging.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	mods := h.Modules()
	errs := make([]error, len(mods))
	var wg sync.WaitGroup
	for n, m := range mods {
		wg.Go(func() {
			if err := m.unload(ctx, true, false); err != nil && !errors.Is(err, ErrUnloaded) {
				errs[n] = err
			}
		})
	}
	wg.Wait()
	if h.ownsCache {
		errs = append(errs, h.cache.Close(ctx))
	}
	h.watchdog().close()
	return errors.Join(errs...)
}

// inTree reports whether path is a file under the trusted directory.
func (h *Host) inTree(path string) bool {
	if h.trusted == "" || path == "" {
		return false
	}
	abs, err := filepath.Abs(path)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(h.trusted, abs)
	return err == nil && rel != "." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && rel != ".."
}

// LoadFile reads and loads a module file (insmod FILE). A file under
// the trusted directory (WithTrustedDir) is in-tree; any other is tainted O. It refuses what is
// not a regular file (module.ErrNotRegular) and reads at most
// Limits.MaxModuleBytes+1 bytes whatever size the file claims
// (module.ReadFile).
func (h *Host) LoadFile(ctx context.Context, path string, options ...LoadOption) (*Module, error) {
	opts, err := newLoadConfig(options)
	if err != nil {
		return nil, err
	}
	b, err := module.ReadFile(path, opts.Limits.or(h.limits).MaxModuleBytes)
	if err != nil {
		return nil, fmt.Errorf("loading module: %w", err)
	}
	h.phase("read")
	if opts.Name == "" {
		opts.Name = nameFromPath(path)
	}
	return h.load(ctx, b, path, h.inTree(path), opts)
}

// Load loads a module from its bytes (insmod). Such a module has no file
// in the trusted directory and is tainted O.
func (h *Host) Load(ctx context.Context, wasm []byte, options ...LoadOption) (*Module, error) {
	opts, err := newLoadConfig(options)
	if err != nil {
		return nil, err
	}
	return h.load(ctx, wasm, "", false, opts)
}

// nameFromPath makes a module name from a file name, for modules without
// metadata that are force-loaded: "My-Plugin.v2.wasm" becomes
// "my_plugin".
func nameFromPath(path string) string {
	base := filepath.Base(path)
	if i := strings.IndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		if b.Len() >= 64 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9' && b.Len() > 0:
			b.WriteRune(r)
		case b.Len() > 0:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "module"
	}
	return b.String()
}
