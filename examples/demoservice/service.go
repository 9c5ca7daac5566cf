// Package demoservice is the sample service of "tracemark demo": a small
// HTTP item store with a cache, a simulated storage backend that is
// sometimes slow and sometimes fails, a background batch job, a rare bug
// that panics, and markers on all of it. It can generate its own load,
// on the loopback interface only, so that there is something to trace.
// It can load the example plugin, a binary-only request classifier that
// runs in the tracemark sandbox and fires markers of its own
// (Config.Plugin), and it lets operators load modules at run time
// (agentmodules.WithHost).
//
// Run it with "go run ./examples/demo" and trace it with the tracemark
// command, or let "tracemark demo" do everything.
package demoservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/tracemark/tracemark/agent"
	"github.com/tracemark/tracemark/agent/agentmodules"
)

// Config configures Run. The zero value serves on a random loopback port
// without load.
type Config struct {
	// Load makes the service send requests to itself.
	Load bool
	// Rate is the load in requests per second (default 300). It is
	// bounded, so that the demo never eats a laptop.
	Rate int
	// Lifetime makes Run return that long after the service is ready
	// (default: when ctx is done), a safety net for a service started by
	// another process. It counts from Ready, so that building and
	// compiling the plugin, which may take minutes on a busy machine,
	// does not use it up.
	Lifetime time.Duration
	// Plugin loads the example plugin (package examples/plugin), a
	// request classifier that runs in the tracemark sandbox, building it
	// first if needed (it needs the source tree and a Go toolchain; the
	// build is cached). If that fails the service runs without it and
	// says why on Log. Either way operators may load modules into the
	// service at run time (tracemark insmod).
	Plugin bool
	// Log receives what the service has to say about itself, such as
	// why the plugin could not be loaded, and the modules' output. Nil
	// discards it.
	Log io.Writer
	// Ready is called once the agent and the HTTP server listen (and the
	// plugin is loaded, or known not to be).
	Ready func(Ready)
}

// Ready tells where the service listens.
type Ready struct {
	PID    int
	HTTP   string // http://127.0.0.1:PORT
	Socket string // the agent's socket
}

// MaxRate bounds Config.Rate.
const MaxRate = 2000

// Run starts the agent and the service and serves until ctx is done or
// the lifetime passes, then shuts everything down.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Rate <= 0 {
		cfg.Rate = 300
	}
	cfg.Rate = min(cfg.Rate, MaxRate)
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	host := newHost(cfg.Log)
	defer host.Close(context.Background())
	var plugin *classifier
	if cfg.Plugin {
		loadPlugin(ctx, host, cfg.Log)
		plugin = &classifier{host: host, log: cfg.Log}
	}
	a, err := agent.Start(agentmodules.WithHost(host))
	if err != nil {
		return fmt.Errorf("demo service: %w", err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo service: %w", err)
	}
	if cfg.Lifetime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Lifetime)
		defer cancel()
	}
	svc := newService(plugin)
	srv := &http.Server{Handler: svc.routes(), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	base := "http://" + ln.Addr().String()
	wg.Go(func() { svc.batchLoop(ctx) })
	if cfg.Load {
		wg.Go(func() { generateLoad(ctx, base, cfg.Rate) })
	}
	if cfg.Ready != nil {
		cfg.Ready(Ready{PID: os.Getpid(), HTTP: base, Socket: a.Socket()})
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
