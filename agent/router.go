package agent

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/tracemark/tracemark/internal/wire"
)

// handler serves one endpoint. It returns an error to answer with (a
// *wire.Error, or any other error as "internal"), unless it has already
// started a response.
type handler func(a *Agent, w http.ResponseWriter, r *http.Request, p params) error

// route is one endpoint: a method and a path whose segments in braces
// are parameters.
type route struct {
	method, path string
	h            handler
}

// routes is the protocol, endpoint by endpoint; internal/wire documents
// it. Adding an endpoint is adding a line.
var routes = []route{
	{http.MethodGet, "/v1/info", (*Agent).getInfo},
	{http.MethodGet, "/v1/markers", (*Agent).getMarkers},
	{http.MethodGet, "/v1/sessions", (*Agent).getSessions},
	{http.MethodGet, "/v1/sessions/{name}", (*Agent).getSession},
	{http.MethodDelete, "/v1/sessions/{name}", (*Agent).deleteSession},
	{http.MethodPost, "/v1/sessions/{name}/enable", (*Agent).postEnable},
	{http.MethodPost, "/v1/sessions/{name}/disable", (*Agent).postDisable},
	{http.MethodPost, "/v1/sessions/{name}/snapshot", (*Agent).postSnapshot},
	{http.MethodPost, "/v1/record", (*Agent).postRecord},
	{http.MethodPost, "/v1/recordings/{id}/stop", (*Agent).postStop},
	{http.MethodGet, "/v1/modules", (*Agent).getModules},
	{http.MethodPost, "/v1/modules", (*Agent).postModules},
	{http.MethodDelete, "/v1/modules/{name}", (*Agent).deleteModule},
	{http.MethodGet, "/v1/taint", (*Agent).getTaint},
}

// params holds the path parameters of a request.
type params map[string]string

// match returns the parameters if path matches the route's path.
func (rt *route) match(path string) (params, bool) {
	want := strings.Split(strings.Trim(rt.path, "/"), "/")
	got := strings.Split(strings.Trim(path, "/"), "/")
	if len(want) != len(got) {
		return nil, false
	}
	var p params
	for i, seg := range want {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			if got[i] == "" {
				return nil, false
			}
			if p == nil {
				p = params{}
			}
			p[strings.TrimSuffix(name, "}")] = got[i]
		} else if seg != got[i] {
			return nil, false
		}
	}
	return p, true
}

// router dispatches requests along routes, answering unknown paths and
// methods, and handler errors, with JSON errors.
func (a *Agent) router() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A client of an older revision would misread the answers; it
		// may still ask for the info, which says what this agent speaks.
		if err := wire.CheckClient(r.Header); err != nil && r.URL.Path != wire.Prefix+"/info" {
			writeError(w, err)
			return
		}
		var allowed []string
		for i := range routes {
			rt := &routes[i]
			p, ok := rt.match(r.URL.Path)
			if !ok {
				continue
			}
			if rt.method != r.Method {
				allowed = append(allowed, rt.method)
				continue
			}
			if err := rt.h(a, w, r, p); err != nil {
				writeError(w, err)
			}
			return
		}
		if len(allowed) > 0 {
			slices.Sort(allowed)
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, wire.Errorf(wire.CodeMethodNotAllowed, "%s %s: allowed methods: %s", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
			return
		}
		writeError(w, wire.Errorf(wire.CodeUnknownEndpoint, "no endpoint %s (this agent speaks protocol v%d)", r.URL.Path, wire.Version))
	})
}

// writeJSON answers with v.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", wire.ContentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers with err as a JSON error.
func writeError(w http.ResponseWriter, err error) {
	var e *wire.Error
	if !errors.As(err, &e) {
		e = wire.Errorf(wire.CodeInternal, "%v", err)
	}
	b, _ := json.Marshal(wire.ErrorBody{Error: e})
	w.Header().Set("Content-Type", wire.ContentTypeJSON)
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(b, '\n'))
}

// readBody reads a request body of at most wire.MaxRequestBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > wire.MaxRequestBytes {
		return nil, wire.Errorf(wire.CodeTooLarge, "request body of %d bytes exceeds %d", r.ContentLength, wire.MaxRequestBytes)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxRequestBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, wire.Errorf(wire.CodeTooLarge, "request body exceeds %d bytes", wire.MaxRequestBytes)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, wire.Errorf(wire.CodeBadRequest, "request body not received in time")
	case err != nil:
		return nil, wire.Errorf(wire.CodeBadRequest, "reading request body: %v", err)
	}
	return b, nil
}

// noBody refuses a body on endpoints that take none, so that a client
// sending one to the wrong endpoint learns about it.
func noBody(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) > 0 {
		return wire.Errorf(wire.CodeBadRequest, "%s %s takes no request body", r.Method, r.URL.Path)
	}
	return nil
}

// sessionName validates the {name} parameter.
func sessionName(p params) (string, error) {
	name := p["name"]
	if err := wire.CheckSessionName(name); err != nil {
		return "", err
	}
	return name, nil
}

func notFound(what, name string) error {
	return wire.Errorf(wire.CodeNotFound, "no %s %q", what, name)
}
