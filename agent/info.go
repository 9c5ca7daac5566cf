package agent

import (
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/tracemark/tracemark/internal/buildinfo"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/session"
)

// getInfo serves GET /v1/info: what `tracemark ps` shows.
func (a *Agent) getInfo(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := noBody(w, r); err != nil {
		return err
	}
	info := wire.Info{
		Protocol:     wire.Version,
		Revision:     wire.Revision,
		PID:          os.Getpid(),
		UID:          os.Geteuid(),
		Program:      program(),
		Args:         os.Args,
		GoVersion:    runtime.Version(),
		Tracemark:    buildinfo.Read().Version,
		Started:      a.started,
		Socket:       a.socket,
		Taint:        module.Tainted().String(),
		ProbeFaults:  marker.FaultCount(),
		RefusedPeers: a.ln.refused.Load(),
		Overloaded:   a.ln.overload.Load(),
	}
	info.Hostname, _ = os.Hostname()
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.MainModule = bi.Main.Path
	}
	for m := range marker.All() {
		info.Markers++
		if m.Enabled() {
			info.Enabled++
		}
	}
	a.mu.Lock()
	info.Sessions, info.Recordings = len(a.sessions), len(a.recordings)
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, info)
	return nil
}

func program() string { return filepath.Base(os.Args[0]) }

// getMarkers serves GET /v1/markers[?glob=GLOB]: what `tracemark list`
// shows.
func (a *Agent) getMarkers(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := noBody(w, r); err != nil {
		return err
	}
	glob := r.URL.Query().Get("glob")
	if glob == "" {
		glob = "*"
	}
	if len(glob) > wire.MaxPatternLen {
		return wire.Errorf(wire.CodeBadPattern, "glob of %d bytes exceeds %d", len(glob), wire.MaxPatternLen)
	}
	ms, err := marker.Match(glob)
	if err != nil {
		return wire.Errorf(wire.CodeBadPattern, "%v", err)
	}
	usage := a.markerUsage()
	out := wire.MarkerList{Markers: make([]wire.Marker, 0, len(ms))}
	for _, m := range ms {
		wm := describeMarker(m)
		u := usage[m.Name()]
		wm.Sessions, wm.Events = u.sessions, u.events
		out.Markers = append(out.Markers, wm)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func describeMarker(m *marker.Info) wire.Marker {
	wm := wire.Marker{
		Name:      m.Name(),
		Provider:  m.Provider(),
		Event:     m.Event(),
		Format:    m.Format(),
		Location:  m.Location(),
		Module:    m.Module().String(),
		Doc:       m.Doc(),
		Stability: m.Stability().String(),
		Enabled:   m.Enabled(),
		Probes:    m.ProbeCount(),
		Refused:   m.Refused(),
		Fields:    make([]wire.Field, 0, m.NumFields()),
	}
	for _, f := range m.Fields() {
		wm.Fields = append(wm.Fields, wire.Field{Name: f.Name, Kind: f.Kind.String()})
	}
	if s := m.Span(); s != nil {
		wm.Span = &wire.MarkerSpan{Duration: s.Duration, Start: s.Start, Keys: s.Keys}
	}
	return wm
}

// usage is what the agent's sessions know about one marker.
type usage struct {
	sessions []string
	events   uint64
}

// markerUsage maps marker names to the sessions recording them now and
// the events those sessions saw.
func (a *Agent) markerUsage() map[string]usage {
	out := map[string]usage{}
	for _, s := range a.liveSessions() {
		st := s.Stats()
		for _, ms := range st.Markers {
			u := out[ms.Name]
			u.events += ms.Delivered + ms.Discarded + ms.Filtered
			out[ms.Name] = u
		}
		for _, c := range s.Classes() {
			if recordedBy(s, c.Marker.Name()) {
				u := out[c.Marker.Name()]
				u.sessions = append(u.sessions, s.Name())
				out[c.Marker.Name()] = u
			}
		}
	}
	return out
}

// recordedBy reports whether a rule of s matches the marker name.
func recordedBy(s *session.Session, name string) bool {
	for _, r := range s.Rules() {
		if ok, _ := path.Match(r.Pattern, name); ok {
			return true
		}
	}
	return false
}

// liveSessions returns every session of the agent, named and ephemeral.
func (a *Agent) liveSessions() []*session.Session {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*session.Session, 0, len(a.sessions)+len(a.recordings))
	for _, n := range a.sessions {
		out = append(out, n.s)
	}
	for _, rec := range a.recordings {
		out = append(out, rec.s)
	}
	return out
}
