package wasm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tracemark/tracemark/examples/plugin/pluginbuild"
	"github.com/tracemark/tracemark/guest/build"
	"github.com/tracemark/tracemark/internal/cachedir"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
)

// testCache is shared by every host of the test binary, persisted in a
// temporary directory, so that each Go module is compiled once per run
// (compiling a Go module takes seconds, more with -race).
var testCache wazero.CompilationCache

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tracemark-wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testCache, err = wazero.NewCompilationCacheWithDir(filepath.Join(dir, "cache"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Built modules too: never in the user's cache directory.
	os.Setenv(cachedir.Env, dir)
	code := m.Run()
	testCache.Close(context.Background())
	os.RemoveAll(dir)
	os.Exit(code)
}

// hostileModinfo is the hostile test module's metadata: GPL, so that
// the only load taints are O and E and each test sees exactly what the
// misbehaviour adds.
var hostileModinfo = module.Modinfo{Name: "hostile", Version: "v0.0.1", License: "GPL", ABI: 1}

var (
	hostileOnce  sync.Once
	hostileBytes []byte
	hostileErr   error
	pluginOnce   sync.Once
	pluginFile   string
	pluginErr    error
)

// hostileWasm builds testdata/hostile once per test binary.
func hostileWasm(t testing.TB) []byte {
	t.Helper()
	hostileOnce.Do(func() {
		var path string
		path, hostileErr = build.Cached(context.Background(), "testdata/hostile", hostileModinfo)
		if hostileErr == nil {
			hostileBytes, hostileErr = os.ReadFile(path)
		}
	})
	if hostileErr != nil {
		t.Fatal(hostileErr)
	}
	return hostileBytes
}

// pluginPath builds the example plugin once per test binary.
func pluginPath(t testing.TB) string {
	t.Helper()
	pluginOnce.Do(func() { pluginFile, pluginErr = pluginbuild.Path(context.Background()) })
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
	return pluginFile
}

// newHost makes a host that shares the test compilation cache and is
// closed at the end of the test.
func newHost(t testing.TB, opts ...HostOption) *Host {
	t.Helper()
	base := []HostOption{WithCache(testCache)}
	if raceEnabled {
		// The race detector makes compiling a Go module tens of seconds.
		// The test's limits come after: their non-zero fields win.
		base = append(base, WithLimits(Limits{CompileTimeout: 10 * time.Minute}))
	}
	h, err := NewHost(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

// recorder is a probe that keeps copies of the events it sees.
type recorder struct {
	mu     sync.Mutex
	events []recorded
	probe  *marker.Probe
}

type recorded struct {
	name   string
	module marker.Module
	fields []any
}

func record(t testing.TB, pattern string) *recorder {
	t.Helper()
	r := &recorder{}
	p, err := marker.Register(pattern, func(e *marker.Event) {
		ev := recorded{name: e.Marker().Name(), module: e.Marker().Module()}
		for i := range e.NumFields() {
			v := e.Field(i)
			switch k := v.Kind(); {
			case k == marker.KindString:
				ev.fields = append(ev.fields, strings.Clone(v.Str())) // valid only during the probe
			case k == marker.KindBytes:
				ev.fields = append(ev.fields, append([]byte{}, v.Bytes()...))
			case k == marker.KindBool:
				ev.fields = append(ev.fields, v.Bool())
			case k == marker.KindDuration:
				ev.fields = append(ev.fields, v.Duration())
			case k.Float():
				ev.fields = append(ev.fields, v.Float())
			case k.Signed():
				ev.fields = append(ev.fields, v.Int())
			default:
				ev.fields = append(ev.fields, v.Uint())
			}
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	r.probe = p
	t.Cleanup(p.Unregister)
	return r
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.events...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// rawCall calls an export of one of m's instances with params, outside
// Call (no deadline, no input or output), and delivers the events it
// batched.
func rawCall(m *Module, export string, params ...uint64) error {
	i, err := m.acquire(context.Background())
	if err != nil {
		return err
	}
	defer m.pool.put(i)
	_, err = i.mod.ExportedFunction(export).Call(context.Background(), params...)
	i.drainEvents(i.mod) // as run does
	return err
}
