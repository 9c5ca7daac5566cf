package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tracemark/tracemark/examples/plugin/pluginbuild"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module/wasm"
)

func TestPlugin(t *testing.T) {
	ctx := context.Background()
	path, err := pluginbuild.Path(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wasm.NewHost()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)

	var mu sync.Mutex
	var events []string
	p, err := marker.Register("classifier:*", func(e *marker.Event) {
		var b strings.Builder
		b.WriteString(e.Marker().Event())
		for i := range e.NumFields() {
			v := e.Field(i)
			switch v.Kind() {
			case marker.KindString:
				b.WriteString(" " + v.Str())
			case marker.KindInt64:
				b.WriteString(" " + itoa(v.Int()))
			case marker.KindUint64:
				b.WriteString(" #" + itoa(int64(v.Uint())))
			}
		}
		mu.Lock()
		events = append(events, b.String())
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()

	m, err := h.LoadFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ req, category string }{
		{"GET /static/app.css", "static"},
		{"GET /api/users", "api"},
		{"DELETE /api/users/7", "api"},
		{"GET /admin/settings", "admin"},
		{"GET /healthz", "health"},
		{"GET /", "other"},
		{"GET /search?q=<script>", "suspicious"},
		{"GET /api/users", "api"},
	}
	for _, tt := range tests {
		out, err := m.Call(ctx, "on_request", []byte(tt.req))
		if err != nil || string(out) != tt.category {
			t.Errorf("%s: %q %v, want %q", tt.req, out, err, tt.category)
		}
	}
	want := []string{
		"classified static 5 #1",
		"classified api 30 #1",
		"classified api 40 #2",
		"classified admin 60 #1",
		"classified health 0 #1",
		"classified other 10 #1",
		"suspicious GET /search?q=<script> script injection",
		"classified suspicious 100 #1",
		"classified api 30 #3",
	}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
	if st := m.Status(); st.Taint.String() != "POE" || st.State != wasm.StateLive || st.Counters.Errors != 0 {
		t.Errorf("status %+v", st)
	}
}

func itoa(v int64) string {
	if v < 0 {
		return "-" + itoa(-v)
	}
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + itoa(v%10)
}

// The build is reproducible: two builds give the same bytes.
func TestReproducibleBuild(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.wasm"), filepath.Join(dir, "b.wasm")
	for _, out := range []string{a, b} {
		if err := pluginbuild.Build(context.Background(), out); err != nil {
			t.Fatal(err)
		}
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if len(ab) == 0 || !bytes.Equal(ab, bb) {
		t.Errorf("two builds differ (%d and %d bytes)", len(ab), len(bb))
	}
}
