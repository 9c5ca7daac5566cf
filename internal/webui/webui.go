// Package webui holds the plumbing of "tracemark ui": the page and its
// assets (embedded, nothing fetched from elsewhere), the token that every
// request must carry, and Server-Sent Events.
//
// The agents' sockets admit only their owner and root. A TCP port on the
// loopback interface admits every local user, so the server binds
// 127.0.0.1 only, on a random port, and requires a random token on every
// request (page, assets, API, event streams and downloads alike): the URL
// printed to the user who started it is the capability. Requests whose
// Host is not the loopback address are refused too, so that a web page
// that rebinds its own name to 127.0.0.1 cannot reach the server from
// the user's browser.
//
// What the API does (talking to agents) lives in cmd/tracemark, which
// mounts its handlers on the mux that [Guard] protects.
package webui

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// TokenParam is the query parameter that carries the token. The page
// sends it as the header TokenHeader where it can, and in the query
// where a browser cannot set headers (EventSource, links).
const TokenParam = "token"

// TokenHeader is the request header that carries the token.
const TokenHeader = "X-Tracemark-Token"

// NewToken returns a random token: 128 bits, in hex.
func NewToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("webui: token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Listen listens on a random port of 127.0.0.1, and only there.
func Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webui: listen: %w", err)
	}
	return ln, nil
}

// URL returns the address to open: the page of the server on ln, with
// the token.
func URL(ln net.Listener, token string) string {
	return "http://" + ln.Addr().String() + "/?" + TokenParam + "=" + token
}

// Guard wraps h so that only requests carrying token, to a loopback
// Host, reach it; others get 403 Forbidden. The answers forbid caching
// and framing.
func Guard(token string, h http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get(TokenHeader)
		if got == "" {
			got = r.URL.Query().Get(TokenParam)
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 || !loopbackHost(r.Host) {
			http.Error(w, "forbidden: open the URL that tracemark ui printed, token included", http.StatusForbidden)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names the loopback address.
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// indexPage is the page, with the token in the addresses of its assets.
var indexPage = template.Must(template.ParseFS(assets, "assets/index.html"))

// Mount adds the page ("/") and its assets ("/assets/") to mux.
func Mount(mux *http.ServeMux, token string) {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree has this directory
	}
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(sub)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy",
			"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		if err := indexPage.Execute(w, struct{ Token string }{token}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}

// Events is a stream of Server-Sent Events.
type Events struct {
	w http.ResponseWriter
	f http.Flusher
}

// StartEvents sends the headers of an event stream. It fails if w cannot
// flush.
func StartEvents(w http.ResponseWriter) (*Events, error) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, fmt.Errorf("webui: the response cannot be streamed")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &Events{w: w, f: f}, nil
}

// Send sends one event of the given name with v as its JSON data.
func (e *Events) Send(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("webui: event %s: %w", name, err)
	}
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", name, b); err != nil {
		return err
	}
	e.f.Flush()
	return nil
}
