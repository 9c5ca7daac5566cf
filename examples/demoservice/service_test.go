package demoservice

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracemark/tracemark/marker"
)

func TestServiceFiresMarkers(t *testing.T) {
	dir, err := os.MkdirTemp("", "tmds")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	t.Setenv("XDG_RUNTIME_DIR", dir)

	var panics, done atomic.Int64
	for pattern, n := range map[string]*atomic.Int64{"app:panic": &panics, "http:request_done": &done} {
		p, err := marker.Register(pattern, func(*marker.Event) { n.Add(1) })
		if err != nil {
			t.Fatal(err)
		}
		defer p.Unregister()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Ready, 1)
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, Config{Ready: func(r Ready) { ready <- r }}) }()
	var r Ready
	select {
	case r = <-ready:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("service not ready")
	}
	if _, err := os.Stat(r.Socket); err != nil {
		t.Errorf("agent socket: %v", err)
	}
	tests := []struct {
		method, path string
		status       []int // storage fails now and then: 503 is always possible
	}{
		{"GET", "/healthz", []int{200}},
		{"GET", "/items/1", []int{200, 503}},
		{"GET", "/items/950", []int{404, 503}},
		{"PUT", "/items/3", []int{201, 503}},
		{"GET", "/search?q=lamp", []int{200, 503}},
		{"GET", "/items/666", []int{500}},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, r.HTTP+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ok := false
		for _, s := range tt.status {
			ok = ok || resp.StatusCode == s
		}
		if !ok {
			t.Errorf("%s %s: %d, want one of %v", tt.method, tt.path, resp.StatusCode, tt.status)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if panics.Load() != 1 || done.Load() != int64(len(tests)) {
		t.Errorf("app:panic fired %d times, http:request_done %d; want 1 and %d", panics.Load(), done.Load(), len(tests))
	}
	if _, err := os.Stat(r.Socket); !os.IsNotExist(err) {
		t.Errorf("agent socket left behind: %v", err)
	}
}

// The service's command line refuses what it does not take, with exit
// status 2, before starting anything.
func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{{"-rate", "-1"}, {"-lifetime", "-1s"}, {"extra"}, {"-nosuchflag"}} {
		var out, errOut strings.Builder
		if code := Main(args, strings.NewReader(""), &out, &errOut); code != 2 || out.Len() != 0 || errOut.Len() == 0 {
			t.Errorf("Main(%q): exit %d, stdout %q, stderr %q; want 2, nothing on stdout and why on stderr", args, code, out.String(), errOut.String())
		}
	}
}
