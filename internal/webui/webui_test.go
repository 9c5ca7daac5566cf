package webui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const testToken = "0123456789abcdef0123456789abcdef"

func testServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	Mount(mux, testToken)
	mux.HandleFunc("GET /api/thing", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "thing") })
	srv := httptest.NewServer(Guard(testToken, mux))
	t.Cleanup(srv.Close)
	return srv
}

func TestGuard(t *testing.T) {
	srv := testServer(t)
	tests := []struct {
		name, path, header, host string
		want                     int
	}{
		{name: "page without token", path: "/", want: http.StatusForbidden},
		{name: "asset without token", path: "/assets/app.js", want: http.StatusForbidden},
		{name: "api without token", path: "/api/thing", want: http.StatusForbidden},
		{name: "wrong token", path: "/api/thing?token=" + strings.Repeat("f", 32), want: http.StatusForbidden},
		{name: "token prefix", path: "/api/thing?token=" + testToken[:31], want: http.StatusForbidden},
		{name: "empty token", path: "/api/thing?token=", want: http.StatusForbidden},
		{name: "token in query", path: "/api/thing?token=" + testToken, want: http.StatusOK},
		{name: "token in header", path: "/api/thing", header: testToken, want: http.StatusOK},
		{name: "wrong header wins over query", path: "/api/thing?token=" + testToken, header: "x", want: http.StatusForbidden},
		{name: "foreign host", path: "/api/thing?token=" + testToken, host: "evil.example:80", want: http.StatusForbidden},
		{name: "localhost name", path: "/api/thing?token=" + testToken, host: "localhost:80", want: http.StatusForbidden},
		{name: "page", path: "/?token=" + testToken, want: http.StatusOK},
		{name: "asset", path: "/assets/uPlot.iife.min.js?token=" + testToken, want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set(TokenHeader, tt.header)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s: %s, want %d", tt.path, resp.Status, tt.want)
			}
		})
	}
}

// The page names its assets with the token, and loads nothing from
// elsewhere.
func TestPage(t *testing.T) {
	srv := testServer(t)
	resp, err := http.Get(srv.URL + "/?token=" + testToken)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, asset := range []string{"uPlot.iife.min.js", "uPlot.min.css", "app.js", "app.css"} {
		if !strings.Contains(page, "/assets/"+asset+"?token="+testToken) {
			t.Errorf("the page does not load /assets/%s with the token", asset)
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("the page names another origin:\n%s", page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q: want default-src 'self'", csp)
	}
}

func TestURLIsLoopback(t *testing.T) {
	ln, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	u := URL(ln, tok)
	if !strings.HasPrefix(u, "http://127.0.0.1:") || !strings.HasSuffix(u, "/?token="+tok) || len(tok) != 32 {
		t.Errorf("URL %q", u)
	}
	if tok2, _ := NewToken(); tok2 == tok {
		t.Errorf("two tokens are equal: %s", tok)
	}
}

func TestEvents(t *testing.T) {
	rec := httptest.NewRecorder()
	ev, err := StartEvents(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Send("tick", map[string]string{"a": "x\ny"}); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Body.String(), "event: tick\ndata: {\"a\":\"x\\ny\"}\n\n"; got != want {
		t.Errorf("event stream %q, want %q", got, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
}
