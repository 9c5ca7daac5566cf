package wasm

import (
	"fmt"
	"io"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tracemark/tracemark/module"
)

// HostOption configures NewHost. Options are made by the With functions
// of this package that return a HostOption; the zero configuration,
// NewHost without options, is the default of each: default policy and
// limits, no trusted keys (every module is tainted E), no trusted
// directory (every module is tainted O), module output discarded. An
// option given an invalid value makes NewHost fail with an error naming
// the option.
type HostOption interface{ applyHost(*hostConfig) }

// LoadOption configures one load (Host.Load, Host.LoadFile, LoadFile):
// by default a load takes the host's policy and limits, and refuses a
// module that fails the ABI check. An option given an invalid value makes
// the load fail with an error naming the option.
type LoadOption interface{ applyLoad(*loadConfig) }

type hostOptionFunc func(*hostConfig)

func (f hostOptionFunc) applyHost(c *hostConfig) { f(c) }

type loadOptionFunc func(*loadConfig)

func (f loadOptionFunc) applyLoad(c *loadConfig) { f(c) }

// WithPolicy sets the process-wide policy (default module.Default, the
// policy of TRACEMARK_MODULE_POLICY or kernel); modules may override it
// (WithLoadPolicy).
func WithPolicy(p module.Policy) HostOption {
	return hostOptionFunc(func(c *hostConfig) { c.Policy = p })
}

// WithTrustedDir sets the host's module directory: modules loaded from a
// file under it are in-tree (no taint O). By default, and with an empty
// dir, there is none. NewHost fails if dir cannot be resolved.
func WithTrustedDir(dir string) HostOption {
	return hostOptionFunc(func(c *hostConfig) { c.TrustedDir = dir })
}

// WithKeys sets the signers the host trusts (no taint E); by default it
// trusts none.
func WithKeys(keys module.Keyring) HostOption {
	return hostOptionFunc(func(c *hostConfig) { c.Keys = keys })
}

// WithRequireSignature makes the host refuse modules that are not signed
// by a trusted key (WithKeys), like the kernel's module.sig_enforce. By
// default unsigned modules load, tainted E.
func WithRequireSignature() HostOption {
	return hostOptionFunc(func(c *hostConfig) { c.RequireSignature = true })
}

// WithLimits sets the default limits of every module: the non-zero fields
// of l replace those of DefaultLimits (or of an earlier WithLimits).
// Negative sizes, counts and durations are invalid; a negative EventRate
// means no event budget.
func WithLimits(l Limits) HostOption {
	return hostOptionFunc(func(c *hostConfig) {
		if err := l.check(); err != nil {
			c.errs = append(c.errs, fmt.Errorf("WithLimits: %w", err))
			return
		}
		c.Limits = l.or(c.Limits)
	})
}

// WithCache shares the wazero compilation cache cache instead of the
// host's cache on disk, which is then not used: the caller answers for
// what it holds. A nil cache keeps the default.
func WithCache(cache wazero.CompilationCache) HostOption {
	return hostOptionFunc(func(c *hostConfig) { c.Cache = cache })
}

// WithCacheDir sets the directory of the host's compilation cache on
// disk, which spares compiling a module again after it was unloaded or the
// process restarted. Default, and with an empty dir: "compiled" in
// tracemark's cache directory ($TRACEMARK_CACHE_DIR, else tracemark in
// the user's cache directory); a test binary has none unless dir or
// $TRACEMARK_CACHE_DIR is set. Entries are authenticated with a key kept
// in the directory, readable only by its user; a directory that another
// user owns or may write to is not used. A cache that cannot be used
// costs only compiling: the host works without it and says why in
// Host.CacheStats and on WithLog's writer.
func WithCacheDir(dir string) HostOption {
	return hostOptionFunc(func(c *hostConfig) { c.CacheDir = dir })
}

// WithCacheBytes bounds the cache on disk: after storing an entry the
// host removes the least recently used ones until the cache fits.
// Default, and with 0, DefaultCacheBytes; a negative size is invalid.
func WithCacheBytes(n int64) HostOption {
	return hostOptionFunc(func(c *hostConfig) {
		if n < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithCacheBytes: %d bytes: want 0 (the default) or more", n))
			return
		}
		c.CacheBytes = n
	})
}

// WithoutDiskCache keeps compiled modules in memory only: every process
// compiles each module once. By default the host caches them on disk
// (WithCacheDir).
func WithoutDiskCache() HostOption {
	return hostOptionFunc(func(c *hostConfig) { c.NoDiskCache = true })
}

// WithLog sends the host's own messages, one line each, to w: what went
// wrong with the compilation cache. By default, and with a nil w, they are
// discarded.
func WithLog(w io.Writer) HostOption {
	return hostOptionFunc(func(c *hostConfig) { c.Log = w })
}

// WithOutput sends the modules' stdout and stderr to w, each line
// prefixed with the module's name. By default, and with a nil w, it is
// discarded (the host still keeps the start of a dying module's stderr
// for the error).
func WithOutput(w io.Writer) HostOption {
	return hostOptionFunc(func(c *hostConfig) { c.Output = w })
}

// WithUnloadDead unloads a module as soon as it dies (its markers are
// then removed), instead of keeping it listed as dead until it is
// unloaded (the default).
func WithUnloadDead() HostOption {
	return hostOptionFunc(func(c *hostConfig) { c.UnloadDead = true })
}

// WithForce loads a module that fails the ABI check (no metadata, another
// ABI version, imports the host does not offer), like insmod --force;
// by default such a module is refused. The module is tainted F; calls to
// functions the host does not offer trap (taint D). Malformed metadata is
// refused even when forced.
func WithForce() LoadOption {
	return loadOptionFunc(func(c *loadConfig) { c.Force = true })
}

// WithName names a forced module that has no metadata. LoadFile defaults
// it from the file name; Load, and an empty name, leave it unnamed. A
// name that is not a valid module name is refused by the load.
func WithName(name string) LoadOption {
	return loadOptionFunc(func(c *loadConfig) { c.Name = name })
}

// WithLoadPolicy overrides the host's policy (WithPolicy) for this module;
// module.Default, the default, keeps the host's.
func WithLoadPolicy(p module.Policy) LoadOption {
	return loadOptionFunc(func(c *loadConfig) { c.Policy = p })
}

// WithLoadLimits overrides the host's limits (WithLimits) for this
// module: its non-zero fields replace the host's. Negative sizes, counts
// and durations are invalid.
func WithLoadLimits(l Limits) LoadOption {
	return loadOptionFunc(func(c *loadConfig) {
		if err := l.check(); err != nil {
			c.errs = append(c.errs, fmt.Errorf("WithLoadLimits: %w", err))
			return
		}
		c.Limits = l.or(c.Limits)
	})
}

// newLoadConfig applies opts.
func newLoadConfig(opts []LoadOption) (loadConfig, error) {
	var c loadConfig
	for _, o := range opts {
		if o != nil {
			o.applyLoad(&c)
		}
	}
	if len(c.errs) > 0 {
		return c, fmt.Errorf("loading module: %w", c.errs[0])
	}
	return c, nil
}

// check refuses negative limits.
func (l Limits) check() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"CallTimeout", l.CallTimeout}, {"InitTimeout", l.InitTimeout}, {"CompileTimeout", l.CompileTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("negative %s %v; 0 keeps the default", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"EventBurst", l.EventBurst}, {"MaxMarkers", l.MaxMarkers}, {"MaxModuleBytes", l.MaxModuleBytes},
		{"MaxFunctions", l.MaxFunctions}, {"MaxFunctionBytes", l.MaxFunctionBytes}, {"MaxNesting", l.MaxNesting},
		{"MaxLocals", l.MaxLocals}, {"MaxBrTableTargets", l.MaxBrTableTargets},
		{"MaxTableElements", l.MaxTableElements}, {"MaxCodeUnits", l.MaxCodeUnits},
	} {
		if n.v < 0 {
			return fmt.Errorf("negative %s %d; 0 keeps the default", n.name, n.v)
		}
	}
	return nil
}
