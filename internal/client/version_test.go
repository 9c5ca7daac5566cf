package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

// fakeAgent serves POST /v1/record on a unix socket as an agent of the
// given protocol revision would: a hello frame, then an end frame. It
// returns the socket and the protocol header of the last request.
func fakeAgent(t *testing.T, revision int) (string, func() string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tmw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "1234.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(wire.HeaderProtocol)
		if r.URL.Path != wire.Prefix+"/record" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", wire.ContentTypeFrames)
		fw := wire.NewFrameWriter(w)
		if err := fw.WriteJSON(wire.FrameHello, wire.Hello{Protocol: wire.Version, Revision: revision, PID: 1234, Session: "rec"}); err != nil {
			t.Error(err)
		}
		if err := fw.WriteJSON(wire.FrameEnd, wire.End{}); err != nil {
			t.Error(err)
		}
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return sock, func() string {
		select {
		case h := <-got:
			return h
		default:
			return "(no request)"
		}
	}
}

// TestClientRefusesANewerAgent checks that a client meeting an agent of a
// later protocol revision refuses its event stream, with an error naming
// both versions and saying to upgrade, and that it reads the stream of an
// agent of its own revision or an older one. Every request says the
// client's protocol.
func TestClientRefusesANewerAgent(t *testing.T) {
	this := wire.ProtocolString(wire.Version, wire.Revision)
	for _, tc := range []struct {
		revision int
		refused  bool
	}{
		{wire.Revision + 1, true},
		{wire.Revision, false},
		{0, false}, // an agent older than revisions
	} {
		sock, header := fakeAgent(t, tc.revision)
		c := client.NewClient(sock)
		s, err := c.Record(context.Background(), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "x:*"}}})
		if h := header(); h != this {
			t.Errorf("revision %d: the request's %s header is %q, want %q", tc.revision, wire.HeaderProtocol, h, this)
		}
		if !tc.refused {
			if err != nil {
				t.Errorf("revision %d: %v", tc.revision, err)
			} else {
				s.Close()
			}
			c.Close()
			continue
		}
		if err == nil {
			s.Close()
			t.Fatalf("revision %d: the client read the stream of a newer agent", tc.revision)
		}
		theirs := wire.ProtocolString(wire.Version, tc.revision)
		if !errors.Is(err, wire.ErrProtocol) || !strings.Contains(err.Error(), "protocol "+theirs) ||
			!strings.Contains(err.Error(), "speaks "+this) || !strings.Contains(err.Error(), "upgrade tracemark") {
			t.Errorf("revision %d: %v, want ErrProtocol naming %s and %s and saying to upgrade tracemark", tc.revision, err, theirs, this)
		}
		c.Close()
	}
}
