package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/internal/wire"
)

// TestAgentRefusesAnOlderClient plays a client that says it speaks an
// older protocol revision: the agent refuses it, naming both versions,
// except for the info, which says what the agent speaks; clients that
// say nothing (curl) or the current revision are served.
func TestAgentRefusesAnOlderClient(t *testing.T) {
	a, _ := startAgent(t)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", a.Socket())
	}}}
	defer hc.CloseIdleConnections()
	get := func(path, header string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://x"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			req.Header.Set(wire.HeaderProtocol, header)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	this := wire.ProtocolString(wire.Version, wire.Revision)
	old := wire.ProtocolString(wire.Version, wire.Revision-1)

	code, body := get("/v1/markers", old)
	var eb wire.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || code != http.StatusBadRequest || eb.Error == nil || eb.Error.Code != wire.CodeProtocol {
		t.Fatalf("GET /v1/markers from a %s client: %d %s, want 400 %s", old, code, body, wire.CodeProtocol)
	}
	if msg := eb.Error.Message; !strings.Contains(msg, "protocol "+this) || !strings.Contains(msg, "speaks "+old) || !strings.Contains(msg, "upgrade tracemark") {
		t.Errorf("refusal %q: want both versions named and an upgrade advised", msg)
	}
	code, body = get("/v1/info", old)
	var info wire.Info
	if err := json.Unmarshal(body, &info); err != nil || code != http.StatusOK || info.Protocol != wire.Version || info.Revision != wire.Revision {
		t.Errorf("GET /v1/info from a %s client: %d %s, want the info with protocol %s", old, code, body, this)
	}
	for _, h := range []string{"", this} {
		if code, body := get("/v1/markers", h); code != http.StatusOK {
			t.Errorf("GET /v1/markers with header %q: %d %s", h, code, body)
		}
	}
	if code, body := get("/v1/markers", "one"); code != http.StatusBadRequest || !strings.Contains(string(body), wire.CodeBadRequest) {
		t.Errorf("GET /v1/markers with a malformed header: %d %s, want 400 %s", code, body, wire.CodeBadRequest)
	}
}

// TestStreamsSayTheRevision checks that an agent's event streams say its
// protocol revision, which clients check.
func TestStreamsSayTheRevision(t *testing.T) {
	_, c := startAgent(t)
	s, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Duration: "1ms"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Hello.Protocol != wire.Version || s.Hello.Revision != wire.Revision {
		t.Errorf("hello says protocol %d.%d, want %s", s.Hello.Protocol, s.Hello.Revision, wire.ProtocolString(wire.Version, wire.Revision))
	}
}
