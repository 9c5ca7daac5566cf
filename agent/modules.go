package agent

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/tracemark/tracemark/agent/internal/request"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/module"
)

// ModuleHost is what the agent needs of a host of WebAssembly modules to
// serve tracemark insmod, rmmod and lsmod. Package agent/agentmodules
// provides the one implementation, for a module/wasm host:
//
//	a, err := agent.Start(agentmodules.WithHost(host))
//
// The agent knows modules only through this interface, so that a program
// that loads none does not link the sandbox (wazero). Its methods speak
// the agent's internal protocol types: other packages of tracemark
// implement it, programs do not.
type ModuleHost interface {
	// Policy names the host's default policy, as lsmod shows it.
	Policy() string
	// Modules describes the modules of the host, in load order.
	Modules() []wire.ModuleInfo
	// Load reads the module file req.Path (validated: absolute, clean) with the process's permissions,
	// under the host's configuration, and loads it. Its errors are
	// *wire.Error values saying what to do about them.
	Load(ctx context.Context, req request.InsmodSpec) (wire.ModuleInfo, error)
	// Unload unloads the module named name (wire.CheckModuleName has
	// accepted it); force unloads it even if sessions record its markers.
	// Its errors are *wire.Error values.
	Unload(ctx context.Context, name string, force bool) (wire.ModuleInfo, error)
}

// WithModuleHost lets operators load and unload modules into h at run
// time (tracemark insmod, rmmod), and shows h's modules in tracemark lsmod
// and taint. Programs call agentmodules.WithHost, which makes h of a
// module/wasm host. Loading code into a running process is the program's
// decision: without this option the agent answers insmod and rmmod with
// the error "unavailable", lsmod lists no module, and taint shows the
// process taint only. A nil h is no option (the default).
func WithModuleHost(h ModuleHost) Option {
	return optionFunc(func(c *config) {
		if h != nil {
			c.modules = h
		}
	})
}

// modulesImport is the package that gives the agent module support, as
// the error for a program without it names it.
const modulesImport = "github.com/tracemark/tracemark/agent/agentmodules"

// errNoModules answers module requests to a process that did not opt in.
func errNoModules() error {
	return wire.Errorf(wire.CodeUnavailable, "process %d does not load modules: this program was built without module support: import %s and start its agent with agentmodules.WithHost(host)", os.Getpid(), modulesImport)
}

// getModules serves GET /v1/modules: what `tracemark lsmod` shows.
func (a *Agent) getModules(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := noBody(w, r); err != nil {
		return err
	}
	out := wire.ModuleList{Taint: module.Tainted().String(), Modules: []wire.ModuleInfo{}}
	if h := a.cfg.modules; h != nil {
		out.Loading = true
		out.Policy = h.Policy()
		out.Modules = append(out.Modules, h.Modules()...)
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
	// A client that gives up (its timeout) cancels the load while the
	// module compiles; once the module's code runs (its initializer) the
	// load finishes, and lsmod tells whether it is loaded.
	mi, err := h.Load(r.Context(), spec)
	a.freshWriteDeadline(w) // compiling a large module can take long
	if err != nil {
		a.cfg.logger.Warn("tracemark: module refused", "path", spec.Path, "force", spec.Force, "err", err)
		return err
	}
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
	// A client that gives up ends the wait for a running call: the module
	// takes no new call and is unloaded when that call ends (lsmod shows
	// it until then).
	mi, err := h.Unload(r.Context(), name, force)
	a.freshWriteDeadline(w) // the wait for a running call can take long
	if err != nil {
		return err
	}
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
			out.Modules = append(out.Modules, wire.ModuleTaint{Name: m.Name, Taint: m.Taint, State: m.State})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// freshWriteDeadline gives the answer to a request that took long in the
// process a write timeout of its own: the server's counts from the
// request.
func (a *Agent) freshWriteDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(a.cfg.writeTimeout))
}
