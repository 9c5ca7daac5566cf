package demoservice

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/examples/plugin/pluginbuild"
	"github.com/tracemark/tracemark/internal/cachedir"
	"github.com/tracemark/tracemark/marker"
)

// TestServicePlugin runs the service with the example plugin: the plugin
// classifies every request and fires its markers, and the service
// refuses what it finds suspicious.
func TestServicePlugin(t *testing.T) {
	dir, err := os.MkdirTemp("", "tmds")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	t.Setenv("XDG_RUNTIME_DIR", dir)

	var (
		mu         sync.Mutex
		categories []string
		suspicious int
	)
	p, err := marker.Register("classifier:*", func(e *marker.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Marker().Event() == "classified" {
			// Strings point into the module's memory during the probe: copy.
			categories = append(categories, strings.Clone(e.Field(0).Str()))
		} else {
			suspicious++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()

	var log syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Ready, 1)
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, Config{Plugin: true, Log: &log, Ready: func(r Ready) { ready <- r }}) }()
	var r Ready
	select {
	case r = <-ready:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatal("service not ready")
	}
	if !strings.Contains(log.String(), "loaded the example plugin classifier v1.0.0 (taint POE, live)") {
		t.Fatalf("the service did not load the plugin:\n%s", log.String())
	}
	for _, tt := range []struct {
		path   string
		status []int
	}{
		{"/healthz", []int{200}},
		{"/items/1", []int{200, 503}},
		{"/.env", []int{403}},
		{"/search?q=%27%20or%201=1--", []int{403}},
	} {
		resp, err := http.Get(r.HTTP + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !containsInt(tt.status, resp.StatusCode) {
			t.Errorf("GET %s: %d, want one of %v", tt.path, resp.StatusCode, tt.status)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"health", "other", "suspicious", "suspicious"}; strings.Join(categories, " ") != strings.Join(want, " ") || suspicious != 2 {
		t.Errorf("the plugin classified %q with %d suspicious events; want %q and 2", categories, suspicious, want)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestPluginLoadOutlivesTheBuildTimeout checks that loading the plugin,
// which compiles it, is not bounded by the build's timeout: here the
// build's time is over as soon as it starts (as when a slow build used it
// up), and the built plugin still loads.
func TestPluginLoadOutlivesTheBuildTimeout(t *testing.T) {
	path, err := pluginbuild.Path(context.Background())
	if err != nil {
		t.Skipf("cannot build the example plugin: %v", err)
	}
	saved := buildTimeout
	buildTimeout = time.Nanosecond
	defer func() { buildTimeout = saved }()
	var log syncBuffer
	h := newHost(&log)
	defer h.Close(context.Background())
	loadPluginFrom(context.Background(), h, &log, func(ctx context.Context) (string, error) {
		<-ctx.Done() // the build's time is up
		return path, nil
	})
	if h.Module(pluginName) == nil || !strings.Contains(log.String(), "loaded the example plugin classifier") {
		t.Fatalf("the plugin did not load after its build's time was up:\n%s", log.String())
	}
}

// TestHostCacheDir checks that the service's host keeps compiled modules
// where every host does by default, "compiled" in tracemark's cache
// directory: here, the temporary one TestMain set.
func TestHostCacheDir(t *testing.T) {
	var log syncBuffer
	h := newHost(&log)
	defer h.Close(context.Background())
	want := filepath.Join(os.Getenv(cachedir.Env), "compiled")
	if st := h.CacheStats(); st.Dir != want {
		t.Fatalf("cache directory %q (disabled: %q), want %q; log:\n%s", st.Dir, st.Disabled, want, log.String())
	}
}
