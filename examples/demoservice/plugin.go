package demoservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tracemark/tracemark/examples/plugin/pluginbuild"
	"github.com/tracemark/tracemark/module/wasm"
)

// The service loads the example plugin (package examples/plugin), a
// binary-only request classifier that runs in the tracemark sandbox: it
// calls the plugin's hook for every request, answers 403 to what it
// classifies as suspicious, and the plugin fires its own markers
// (classifier:classified, classifier:suspicious), which an operator sees
// beside the service's. The module host is also given to the agent, so
// that an operator can unload the plugin, load it again or load another
// one (tracemark rmmod, insmod, lsmod).

// pluginName is the example plugin's module name.
var pluginName = pluginbuild.Modinfo.Name

// pluginHook is the export the service calls with "METHOD PATH[?QUERY]".
const pluginHook = "on_request"

// buildTimeout bounds building the plugin, so that a machine where the
// build cannot work (no network to download a toolchain, ...) still
// starts the service in time. It is a variable for tests.
var buildTimeout = 20 * time.Second

// loadTimeout bounds loading the built plugin, which compiles it to
// machine code: a second or two, more than buildTimeout under the race
// detector on a busy machine. Only a hung compiler reaches it, so it is
// generous: the service waits for the plugin rather than run without it.
const loadTimeout = 5 * time.Minute

// newHost makes the module host with the defaults a program gets: compiled
// modules are cached on disk in tracemark's cache directory ("compiled"
// under $TRACEMARK_CACHE_DIR, else under tracemark in the user's cache
// directory), so that only the first run compiles the plugin; a cache it
// cannot use only costs compiling at every start, and the host says why
// on log. (A test binary has no cache on disk unless
// $TRACEMARK_CACHE_DIR is set: the tests' TestMain points it at a
// temporary directory.)
func newHost(log io.Writer) *wasm.Host {
	h, _ := wasm.NewHost(wasm.WithOutput(log), wasm.WithLog(log)) // cannot fail without a trusted directory
	return h
}

// loadPlugin builds the example plugin if needed and loads it into h.
// Failing is not fatal: the service runs without the plugin, and says
// why on log.
func loadPlugin(ctx context.Context, h *wasm.Host, log io.Writer) {
	loadPluginFrom(ctx, h, log, pluginbuild.Path)
}

// loadPluginFrom is loadPlugin with the plugin built by build, which
// gets buildTimeout; the load gets loadTimeout of its own.
func loadPluginFrom(ctx context.Context, h *wasm.Host, log io.Writer, build func(context.Context) (string, error)) {
	bctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	type built struct {
		path string
		err  error
	}
	done := make(chan built, 1)
	go func() {
		p, err := build(bctx)
		done <- built{p, err}
	}()
	var b built
	start := time.Now()
	select {
	case b = <-done:
	case <-time.After(500 * time.Millisecond):
		fmt.Fprintln(log, "demo service: building the example plugin (examples/plugin, GOOS=wasip1); the first build compiles it and the Go runtime for WebAssembly, 15 to 30 s; later runs use the cache")
		b = <-done
		if b.err == nil {
			fmt.Fprintf(log, "demo service: built the example plugin in %.1fs\n", time.Since(start).Seconds())
		}
	}
	if b.err != nil {
		fmt.Fprintf(log, "demo service: running without the example plugin: cannot build it: %s\n", strings.TrimSpace(b.err.Error()))
		return
	}
	lctx, cancelLoad := context.WithTimeout(ctx, loadTimeout)
	defer cancelLoad()
	m, err := h.LoadFile(lctx, b.path)
	if err != nil {
		fmt.Fprintf(log, "demo service: running without the example plugin: %v\n", err)
		return
	}
	st := m.Status()
	fmt.Fprintf(log, "demo service: loaded the example plugin %s %s (taint %s, %s) from %s\n", st.Name, st.Version, st.Taint, st.State, b.path)
}

// classifier calls the plugin, whichever instance of it is loaded now.
type classifier struct {
	host     *wasm.Host
	log      io.Writer
	reported atomic.Bool
}

// classify returns the plugin's category for a request, or "" if no
// plugin is loaded or it failed (the service then serves the request as
// if there were no plugin: a broken plugin must not take the service
// down).
func (c *classifier) classify(r *http.Request) string {
	if c == nil {
		return ""
	}
	m := c.host.Module(pluginName)
	if m == nil {
		return ""
	}
	req := r.Method + " " + r.URL.Path
	if q, err := url.QueryUnescape(r.URL.RawQuery); err == nil && q != "" {
		req += "?" + q
	}
	out, err := m.Call(r.Context(), pluginHook, []byte(req))
	if err != nil {
		if !errors.Is(err, wasm.ErrUnloaded) && c.reported.CompareAndSwap(false, true) {
			fmt.Fprintf(c.log, "demo service: the example plugin failed, serving without it: %v\n", err)
		}
		return ""
	}
	return string(out)
}
