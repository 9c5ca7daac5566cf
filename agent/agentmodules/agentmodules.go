// Package agentmodules gives the tracemark agent module support: a
// program that lets operators load and unload WebAssembly modules at run
// time (tracemark insmod, rmmod) starts its agent with its module host,
//
//	host, err := wasm.NewHost(wasm.WithTrustedDir("/srv/plugins"))
//	...
//	a, err := agent.Start(agentmodules.WithHost(host))
//
// and tracemark lsmod then lists host's modules, whether the program or an
// operator loaded them. The option lives in a package of its own so that
// programs that load no modules, and import only package agent (or
// agent/autostart), do not link the sandbox (wazero): the agent answers
// their insmod and rmmod with an error that names this package.
package agentmodules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/tracemark/tracemark/agent"
	"github.com/tracemark/tracemark/agent/internal/request"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/wasm"
)

// WithHost lets operators load and unload modules into host at run time
// (tracemark insmod, rmmod), and shows host's modules in tracemark lsmod
// and taint. Loading code into a running process is the program's
// decision: without this option the agent answers insmod and rmmod with
// the error "unavailable", lsmod lists no module, and taint shows the
// process taint only. A nil host is no option.
//
// The process reads a module file itself, by the absolute path the client
// sends, with its own permissions, and host's configuration applies to it:
// policy, trusted keys and directory, signature requirement, limits. Only
// the process's user and root reach the agent, and they could replace the
// program anyway; a host that must run only vetted code requires
// signatures (wasm.WithRequireSignature).
func WithHost(host *wasm.Host) agent.Option {
	if host == nil {
		return agent.WithModuleHost(nil)
	}
	return agent.WithModuleHost(moduleHost{host})
}

// moduleHost serves the agent's module requests with a *wasm.Host.
type moduleHost struct{ h *wasm.Host }

func (m moduleHost) Policy() string { return m.h.Policy().Resolve().String() }

func (m moduleHost) Modules() []wire.ModuleInfo {
	mods := m.h.Modules()
	out := make([]wire.ModuleInfo, 0, len(mods))
	for _, mod := range mods {
		out = append(out, describeModule(mod))
	}
	return out
}

func (m moduleHost) Load(ctx context.Context, req request.InsmodSpec) (wire.ModuleInfo, error) {
	if err := checkModuleFile(req.Path, m.h.Limits().MaxModuleBytes); err != nil {
		return wire.ModuleInfo{}, err
	}
	opts := []wasm.LoadOption{wasm.WithLoadPolicy(req.Policy)}
	if req.Force {
		opts = append(opts, wasm.WithForce())
	}
	mod, err := m.h.LoadFile(ctx, req.Path, opts...)
	if err != nil {
		return wire.ModuleInfo{}, moduleError(fmt.Errorf("%s: %w", req.Path, err))
	}
	return describeModule(mod), nil
}

func (m moduleHost) Unload(ctx context.Context, name string, force bool) (wire.ModuleInfo, error) {
	mod := m.h.Module(name)
	if mod == nil {
		return wire.ModuleInfo{}, wire.Errorf(wire.CodeNotFound, "no module %q is loaded (tracemark lsmod lists them)", name)
	}
	if err := mod.Unload(ctx, force); err != nil {
		return wire.ModuleInfo{}, moduleError(err)
	}
	return describeModule(mod), nil
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
	case errors.Is(err, wasm.ErrCallStuck):
		return wire.Errorf(wire.CodeConflict, "%s; the module takes no new call and is unloaded when that call ends", msg)
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
