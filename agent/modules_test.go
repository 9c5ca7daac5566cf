package agent_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/agent"
	"github.com/tracemark/tracemark/agent/agentmodules"
	"github.com/tracemark/tracemark/examples/plugin/pluginbuild"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/wasm"
)

// syncBuffer is a log destination that tests may read while the agent
// writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// pluginHost returns the example plugin's path and a module host without
// a compilation cache, closed when the test ends.
func pluginHost(t *testing.T) (string, *wasm.Host) {
	t.Helper()
	plugin, err := pluginbuild.Path(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	host, err := wasm.NewHost(wasm.WithLimits(wasm.Limits{CompileTimeout: 10 * time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(context.Background()) })
	return plugin, host
}

// A client that times out while the process compiles the module cancels
// the load: nothing is loaded, the name is not reserved, and loading again
// works.
func TestInsmodClientTimeout(t *testing.T) {
	// No compilation cache: the plugin takes a second or more to compile.
	plugin, host := pluginHost(t)
	var logs syncBuffer
	_, c := startAgent(t, agentmodules.WithHost(host), agent.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Insmod(short, wire.InsmodRequest{Path: plugin}); err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Fatalf("insmod with a 50ms timeout: %v", err)
	}
	waitFor(t, "the agent to finish the load", func() bool {
		s := logs.String()
		return strings.Contains(s, "module refused") || strings.Contains(s, "module loaded")
	})
	if s := logs.String(); !strings.Contains(s, "module refused") || !strings.Contains(s, "context canceled") {
		t.Fatalf("the load was not canceled:\n%s", s)
	}
	if mods := host.Modules(); len(mods) != 0 {
		t.Fatalf("%d modules loaded", len(mods))
	}
	long, cancelLong := context.WithTimeout(context.Background(), 10*time.Minute) // compiling with -race is slow
	defer cancelLong()
	mi, err := c.Insmod(long, wire.InsmodRequest{Path: plugin})
	if err != nil {
		t.Fatalf("insmod after the canceled one: %v", err)
	}
	if mi.State != "live" && mi.State != "refused" {
		t.Errorf("module %+v", mi)
	}
}

// A module without memory, table, exports or start function loads,
// lists and unloads through the agent, and its name is free after.
func TestInsmodBareModule(t *testing.T) {
	bare, err := module.SetModinfo([]byte("\x00asm\x01\x00\x00\x00"), &module.Modinfo{Name: "bare", License: "MIT", ABI: module.ABIVersion})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bare.wasm")
	if err := os.WriteFile(path, bare, 0o644); err != nil {
		t.Fatal(err)
	}
	host, err := wasm.NewHost()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(context.Background()) })
	_, c := startAgent(t, agentmodules.WithHost(host))
	for range 2 {
		mi, err := c.Insmod(ctx(t), wire.InsmodRequest{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		if mi.Name != "bare" || mi.State != "live" || len(mi.Hooks) != 0 || mi.MemoryPages != 0 {
			t.Errorf("insmod: %+v", mi)
		}
		list, err := c.Modules(ctx(t))
		if err != nil || len(list.Modules) != 1 {
			t.Fatalf("lsmod: %+v, %v", list, err)
		}
		if _, err := c.Rmmod(ctx(t), "bare", false); err != nil {
			t.Fatal(err)
		}
	}
}

// An agent started without module support (agentmodules.WithHost)
// refuses insmod and rmmod with an error that tells the program's
// developer what to import, lists no module and still reports the taint.
// agentmodules.WithHost(nil) is the same as no option.
func TestModulesWithoutSupport(t *testing.T) {
	for name, opts := range map[string][]agent.Option{"no option": nil, "nil host": {agentmodules.WithHost(nil)}} {
		t.Run(name, func(t *testing.T) {
			_, c := startAgent(t, opts...)
			want := "this program was built without module support: import github.com/tracemark/tracemark/agent/agentmodules and start its agent with agentmodules.WithHost(host)"
			path := filepath.Join(t.TempDir(), "plugin.wasm")
			if _, err := c.Insmod(ctx(t), wire.InsmodRequest{Path: path}); !wire.IsCode(err, wire.CodeUnavailable) || !strings.Contains(err.Error(), want) {
				t.Errorf("insmod: %v", err)
			}
			if _, err := c.Rmmod(ctx(t), "classifier", false); !wire.IsCode(err, wire.CodeUnavailable) || !strings.Contains(err.Error(), want) {
				t.Errorf("rmmod: %v", err)
			}
			list, err := c.Modules(ctx(t))
			if err != nil || list.Loading || len(list.Modules) != 0 || list.Policy != "" {
				t.Errorf("lsmod: %+v, %v", list, err)
			}
			rep, err := c.Taint(ctx(t))
			if err != nil || rep.Loading || len(rep.Modules) != 0 || rep.Taint != module.Tainted().String() {
				t.Errorf("taint: %+v, %v", rep, err)
			}
		})
	}
}

// An rmmod that waits longer than the agent's write timeout for a call
// into the module to end still gets its answer: the wait for the call
// does not use up the time given to write the response.
func TestRmmodOutlastsWriteTimeout(t *testing.T) {
	plugin, host := pluginHost(t)
	const writeTimeout = 200 * time.Millisecond
	_, c := startAgent(t, agentmodules.WithHost(host), agent.WithTimeouts(0, writeTimeout))
	long, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // compiling with -race is slow
	defer cancel()
	mi, err := c.Insmod(long, wire.InsmodRequest{Path: plugin})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	p, err := marker.Register(mi.Name+":*", func(*marker.Event) {
		once.Do(func() { close(entered) })
		<-release
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	var released sync.Once
	releaseOnce := func() { released.Do(func() { close(release) }) }
	defer releaseOnce() // before Unregister, which waits for the probe
	called := make(chan error, 1)
	go func() {
		_, err := host.Module(mi.Name).Call(context.Background(), "on_request", []byte("GET /api/users/42"))
		called <- err
	}()
	<-entered
	unloaded := make(chan error, 1)
	go func() {
		_, err := c.Rmmod(long, mi.Name, true)
		unloaded <- err
	}()
	// The condition under test is time itself: the unload, waiting for
	// the call, outlasts the write timeout before the call ends.
	time.Sleep(5 * writeTimeout)
	releaseOnce()
	if err := <-unloaded; err != nil {
		t.Fatalf("rmmod that waited %v for a call: %v", 5*writeTimeout, err)
	}
	if err := <-called; err != nil && !errors.Is(err, wasm.ErrUnloaded) {
		t.Errorf("the call: %v", err)
	}
}
