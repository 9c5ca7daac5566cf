package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/internal/wire"
)

// TestRefusesANewerAgent runs tracemark stream against a fake agent of a
// later protocol revision: the command fails with an error naming both
// protocols and saying to upgrade tracemark, and prints no event.
func TestRefusesANewerAgent(t *testing.T) {
	dir, err := os.MkdirTemp("", "tmp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "4321.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != wire.Prefix+"/record" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", wire.ContentTypeFrames)
		fw := wire.NewFrameWriter(w)
		_ = fw.WriteJSON(wire.FrameHello, wire.Hello{Protocol: wire.Version, Revision: wire.Revision + 1, PID: 4321, Session: "rec"})
		_ = fw.WriteJSON(wire.FrameEnd, wire.End{})
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	code, out, errs := runCLI("--socket", sock, "stream", "-e", "x:*", "--duration", "1s")
	theirs, ours := wire.ProtocolString(wire.Version, wire.Revision+1), wire.ProtocolString(wire.Version, wire.Revision)
	if code == 0 || out != "" {
		t.Fatalf("stream from a newer agent: exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"process 4321 speaks tracemark protocol " + theirs, "this tracemark command speaks " + ours, "upgrade tracemark"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}
