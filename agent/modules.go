package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/tracemark/tracemark/agent/internal/request"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/wasm"
)

// WithModules lets operators load and unload WebAssembly modules into
// host at run time (tracemark insmod, rmmod), and shows host's modules in
// tracemark lsmod and taint. Loading code into a running process is the
// program's decision: without this option the agent answers insmod and
// rmmod with the error "unavailable", lsmod lists no module, and taint
// shows the process taint only.
//
// The process reads a module file itself, by the absolute path the client
// sends, with its own permissions, and host's configuration applies to it:
// policy, trusted keys and directory, signature requirement, limits. Only
// the process's user and root reach the agent, and they could replace the
// program anyway; a host that must run only vetted code requires
// signatures (wasm.Config.RequireSignature).
func WithModules(host *wasm.Host) Option {
	return func(c *config) {
		if host != nil {
			c.modules = host
		}
	}
}

// moduleHost is what the agent uses of a *wasm.Host. It is an interface
// so that programs that never call WithModules do not link the sandbox:
// the linker keeps the methods of *wasm.Host only where it is converted.
type moduleHost interface {
	LoadFile(ctx context.Context, path string, opts wasm.LoadOptions) (*wasm.Module, error)
	Module(name string) *wasm.Module
	Modules() []*wasm.Module
	Policy() module.Policy
	Limits() wasm.Limits
}

// errNoModules answers module requests to a process that did not opt in.
func errNoModules() error {
	return wire.Errorf(wire.CodeUnavailable, "process %d does not load modules: its program did not allow loading at run time (agent.WithModules)", os.Getpid())
}

// getModules serves GET /v1/modules: what `tracemark lsmod` shows.
func (a *Agent) getModules(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := noBody(w, r); err != nil {
		return err
	}
	out := wire.ModuleList{Taint: module.Tainted().String(), Modules: []wire.ModuleInfo{}}
	if h := a.cfg.modules; h != nil {
		out.Loading = true
		out.Policy = h.Policy().Resolve().String()
		for _, m := range h.Modules() {
			out.Modules = append(out.Modules, describeModule(m))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// postModules serves POST /v1/modules: tracemark insmod.
func (a *Agent) postModules(w http.ResponseWriter, r *http.Request, _ params) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	spec, err := request.ParseInsmod(body)
	if err != nil {
		return err
	}
	h := a.cfg.modules
	if h == nil {
		return errNoModules()
	}
	if err := checkModuleFile(spec.Path, h.Limits().MaxModuleBytes); err != nil {
		return err
	}
	// A client that gives up (its timeout) cancels the load while the
	// module compiles; once the module's code runs (its initializer) the
	// load finishes, and lsmod tells whether it is loaded.
	m, err := h.LoadFile(r.Context(), spec.Path, wasm.LoadOptions{Force: spec.Force, Policy: spec.Policy})
	if err != nil {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(a.cfg.writeTimeout))
		a.cfg.logger.Warn("tracemark: module refused", "path", spec.Path, "force", spec.Force, "err", err)
		return moduleError(fmt.Errorf("%s: %w", spec.Path, err))
	}
	// Compiling a large module can take longer than the write timeout,
	// which counts from the request: the answer gets its own.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(a.cfg.writeTimeout))
	mi := describeModule(m)
	a.cfg.logger.Info("tracemark: module loaded", "module", mi.Name, "path", spec.Path, "taint", mi.Taint, "state", mi.State)
	writeJSON(w, http.StatusCreated, mi)
	return nil
}

// deleteModule serves DELETE /v1/modules/{name}[?force=1]: tracemark rmmod.
func (a *Agent) deleteModule(w http.ResponseWriter, r *http.Request, p params) error {
	if err := noBody(w, r); err != nil {
		return err
	}
	name := p["name"]
	if err := wire.CheckModuleName(name); err != nil {
		return err
	}
	force, err := request.ParseForce(r.URL.Query().Get("force"))
	if err != nil {
		return err
	}
	h := a.cfg.modules
	if h == nil {
		return errNoModules()
	}
	m := h.Module(name)
	if m == nil {
		return wire.Errorf(wire.CodeNotFound, "no module %q is loaded (tracemark lsmod lists them)", name)
	}
	if err := m.Unload(context.WithoutCancel(r.Context()), force); err != nil {
		return moduleError(err)
	}
	mi := describeModule(m)
	a.cfg.logger.Info("tracemark: module unloaded", "module", name, "force", force, "taint", mi.Taint)
	writeJSON(w, http.StatusOK, mi)
	return nil
}

// getTaint serves GET /v1/taint: what `tracemark taint` shows.
func (a *Agent) getTaint(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := noBody(w, r); err != nil {
		return err
	}
	rep := module.Report()
	out := wire.TaintReport{Taint: rep.Taint.String(), Flags: make([]wire.TaintFlag, 0, len(rep.Flags)), Modules: []wire.ModuleTaint{}}
	for _, f := range rep.Flags {
		tf := wire.TaintFlag{Letter: f.Letter, Meaning: f.Meaning}
		for _, rec := range f.Records {
			tf.Records = append(tf.Records, wire.TaintRecord{Module: rec.Module, Reason: rec.Reason, Time: rec.Time})
		}
		out.Flags = append(out.Flags, tf)
	}
	if h := a.cfg.modules; h != nil {
		out.Loading = true
		for _, m := range h.Modules() {
			st := m.Status()
			out.Modules = append(out.Modules, wire.ModuleTaint{Name: st.Name, Taint: st.Taint.String(), State: st.State.String()})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// checkModuleFile refuses what is not a regular file of at most max
// bytes before the host reads it: a FIFO or a device would block or never
// end.
func checkModuleFile(path string, max int) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return wire.Errorf(wire.CodeNotFound, "process %d cannot read %s: no such file", os.Getpid(), path)
	case err != nil:
		return wire.Errorf(wire.CodeInvalid, "process %d cannot read %s: %v", os.Getpid(), path, unwrapPathError(err))
	case st.IsDir():
		return wire.Errorf(wire.CodeInvalid, "%s is a directory, not a module file", path)
	case !st.Mode().IsRegular():
		return wire.Errorf(wire.CodeInvalid, "%s is not a regular file (a device, pipe or socket), not a module file", path)
	case st.Size() > int64(max):
		return wire.Errorf(wire.CodeInvalid, "%s: %v: %d bytes, the process's limit is %d", path, wasm.ErrTooBig, st.Size(), max)
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// moduleError maps an error of the module layer to an answer. The rule:
// what is wrong with the module file is invalid_argument (the CLI exits
// 2, as for any value the agent refuses); what the state of the process
// prevents is conflict or not_found.
func moduleError(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, wasm.ErrExists):
		return wire.Errorf(wire.CodeConflict, "%s; tracemark rmmod unloads it", msg)
	case errors.Is(err, wasm.ErrInUse):
		return wire.Errorf(wire.CodeConflict, "%s; stop the sessions that record them, or --force, which taints the process R", msg)
	case errors.Is(err, wasm.ErrNotLoaded), errors.Is(err, wasm.ErrUnloaded):
		return wire.Errorf(wire.CodeNotFound, "%s", msg)
	case errors.Is(err, module.ErrBadModinfo):
		// Refused even when forced.
		return wire.Errorf(wire.CodeInvalid, "%s", msg)
	case errors.Is(err, wasm.ErrImport): // --force would not help
		return wire.Errorf(wire.CodeInvalid, "%s", msg)
	case errors.Is(err, module.ErrABIMismatch):
		return wire.Errorf(wire.CodeInvalid, "%s; --force loads it anyway, tainted F, and its markers are then refused by every policy but open", msg)
	case errors.Is(err, module.ErrNotWasm), errors.Is(err, module.ErrNoModinfo),
		errors.Is(err, wasm.ErrNotReactor), errors.Is(err, wasm.ErrMemoryLimit), errors.Is(err, wasm.ErrTooBig),
		errors.Is(err, wasm.ErrSignatureRequired), errors.Is(err, wasm.ErrTrap), errors.Is(err, wasm.ErrDeadline),
		errors.Is(err, wasm.ErrCodeLimit), errors.Is(err, wasm.ErrCompileTimeout),
		errors.Is(err, module.ErrNotRegular), errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return wire.Errorf(wire.CodeInvalid, "%s", msg)
	}
	return wire.Errorf(wire.CodeInternal, "%s", msg)
}

// describeModule converts a module's status for the wire.
func describeModule(m *wasm.Module) wire.ModuleInfo {
	s := m.Status()
	mi := wire.ModuleInfo{
		Name:           s.Name,
		Version:        s.Version,
		Description:    s.Description,
		Author:         s.Author,
		License:        s.License,
		GPLCompatible:  s.GPLCompatible,
		Signer:         s.Signer,
		SignatureState: s.Signature.State.String(),
		Fingerprint:    s.Signature.Fingerprint,
		Path:           s.Path,
		Forced:         s.Forced,
		Taint:          s.Taint.String(),
		State:          s.State.String(),
		Policy:         s.Policy.Resolve().String(),
		Refused:        s.Refused,
		Markers:        make([]wire.ModuleMarker, 0, len(s.Markers)),
		Counters: wire.ModuleCounters{
			Calls: s.Counters.Calls, Fired: s.Counters.Fired, Delivered: s.Counters.Delivered,
			Dropped: s.Counters.Dropped, Errors: s.Counters.Errors,
		},
		MemoryPages:    s.MemoryPages,
		MaxMemoryPages: s.Limits.MemoryPages,
		LastError:      s.LastError,
		Loaded:         s.Loaded,
	}
	if s.State != wasm.StateUnloaded && s.State != wasm.StateDead {
		mi.Hooks = m.Hooks()
		slices.Sort(mi.Hooks)
	}
	for _, ms := range s.Markers {
		mi.Markers = append(mi.Markers, wire.ModuleMarker{Name: ms.Name, Format: ms.Format, Probes: ms.Probes, Refused: ms.Refused})
	}
	return mi
}
