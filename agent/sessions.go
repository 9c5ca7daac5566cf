package agent

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/trace"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tracemark/tracemark/agent/internal/request"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

// named is a long-lived session, created by enable and destroyed by
// disable without patterns (DELETE) or when the agent closes.
type named struct {
	s       *session.Session
	created time.Time
	trigger *snapshotTrigger // nil without one
}

// destroy closes the trigger, then the session.
func (n *named) destroy() {
	if n.trigger != nil {
		n.trigger.close()
	}
	n.s.Destroy()
}

// describe reports the named session, its trigger included.
func (n *named) describe() wire.SessionInfo {
	si := describeSession(n.s, n.created)
	if n.trigger != nil {
		si.Trigger = n.trigger.describe()
	}
	return si
}

// snapshotTrigger writes a snapshot of a named session into a new
// directory under dir whenever a marker matching on fires (rate-limited
// by session.SnapshotOn).
type snapshotTrigger struct {
	spec request.TriggerSpec
	t    *session.Trigger
	fr   *trace.FlightRecorder // Go's, if spec.GoTrace
	seq  atomic.Uint64
	last atomic.Pointer[string]
}

func startTrigger(name string, s *session.Session, spec request.TriggerSpec) (*snapshotTrigger, error) {
	st := &snapshotTrigger{spec: spec}
	if spec.GoTrace {
		// Go's window covers at least the trigger's interval, as the
		// session's buffers hold the newest events.
		st.fr = trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: spec.Every})
		if err := st.fr.Start(); err != nil {
			return nil, wire.Errorf(wire.CodeConflict, "trigger: cannot run Go's flight recorder: %v", err)
		}
	}
	t, err := s.SnapshotOn(spec.On, spec.Every, func() error {
		if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
			return err
		}
		dir := filepath.Join(spec.Dir, fmt.Sprintf("%s-%s-%d", name,
			time.Now().UTC().Format("20060102T150405Z"), st.seq.Add(1)))
		if st.fr != nil {
			// First, so that Go's window ends when the trigger fired.
			if err := writeGoFlight(st.fr, dir+".go.trace"); err != nil {
				return err
			}
		}
		if err := session.WriteSnapshot(s, dir); err != nil {
			return err
		}
		st.last.Store(&dir)
		return nil
	})
	if err != nil {
		if st.fr != nil {
			st.fr.Stop()
		}
		return nil, wire.Errorf(wire.CodeBadPattern, "trigger: %v", err)
	}
	st.t = t
	return st, nil
}

// close stops the trigger, then Go's flight recorder.
func (st *snapshotTrigger) close() {
	st.t.Close()
	if st.fr != nil {
		st.fr.Stop()
	}
}

// writeGoFlight writes the window of Go's flight recorder to file.
func writeGoFlight(fr *trace.FlightRecorder, file string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := fr.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("go flight recorder: %w", err)
	}
	return f.Close()
}

func (st *snapshotTrigger) describe() *wire.TriggerInfo {
	ts := st.t.Stats()
	info := &wire.TriggerInfo{On: st.spec.On, Dir: st.spec.Dir, Every: st.spec.Every.String(),
		Fired: ts.Fired, Taken: ts.Taken, Failed: ts.Failed, Suppressed: ts.Suppressed, GoTrace: st.fr != nil}
	if last := st.last.Load(); last != nil {
		info.LastSnapshot = *last
	}
	if ts.LastError != nil {
		info.LastError = ts.LastError.Error()
	}
	return info
}

// getSessions serves GET /v1/sessions: named sessions, then the
// ephemeral sessions of live recordings.
func (a *Agent) getSessions(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := noBody(w, r); err != nil {
		return err
	}
	a.mu.Lock()
	out := wire.SessionList{Sessions: []wire.SessionInfo{}}
	out.MemoryBudget, out.MemoryInUse = session.MemoryBudget()
	for _, n := range a.sessions {
		out.Sessions = append(out.Sessions, n.describe())
	}
	for _, rec := range a.recordings {
		si := describeSession(rec.s, rec.created)
		si.Ephemeral, si.Recording, si.Client = true, rec.id, rec.client
		out.Sessions = append(out.Sessions, si)
	}
	a.mu.Unlock()
	// Named sessions first, each kind by name.
	slices.SortFunc(out.Sessions, func(x, y wire.SessionInfo) int {
		if x.Ephemeral != y.Ephemeral {
			if x.Ephemeral {
				return 1
			}
			return -1
		}
		return strings.Compare(x.Name, y.Name)
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getSession serves GET /v1/sessions/{name}.
func (a *Agent) getSession(w http.ResponseWriter, r *http.Request, p params) error {
	name, err := sessionName(p)
	if err != nil {
		return err
	}
	if err := noBody(w, r); err != nil {
		return err
	}
	a.mu.Lock()
	n := a.sessions[name]
	a.mu.Unlock()
	if n == nil {
		return notFound("session", name)
	}
	writeJSON(w, http.StatusOK, n.describe())
	return nil
}

// postEnable serves POST /v1/sessions/{name}/enable: add rules to a named
// session, creating and starting it if needed. Either every rule is added
// or none.
func (a *Agent) postEnable(w http.ResponseWriter, r *http.Request, p params) error {
	name, err := sessionName(p)
	if err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	spec, err := request.ParseEnable(body)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n, created, err := a.namedFor(name, spec)
	if err != nil {
		return err
	}
	if spec.Trigger != nil && n.trigger != nil {
		return wire.Errorf(wire.CodeConflict, "session %q already snapshots on %q", name, n.trigger.spec.On)
	}
	if err := enableAll(n.s, spec.Rules); err != nil {
		if created {
			n.s.Destroy()
		}
		return err
	}
	if spec.Trigger != nil {
		st, err := startTrigger(name, n.s, *spec.Trigger)
		if err != nil {
			if created {
				n.s.Destroy()
			}
			return err
		}
		n.trigger = st
	}
	if created {
		if err := n.s.Start(); err != nil {
			n.destroy() // the trigger too
			return sessionError(err)
		}
		a.sessions[name] = n
	}
	writeJSON(w, http.StatusOK, n.describe())
	return nil
}

// namedFor returns the named session, or a new one. Called with a.mu held.
func (a *Agent) namedFor(name string, spec request.EnableSpec) (*named, bool, error) {
	if n := a.sessions[name]; n != nil {
		if spec.ModeSet && spec.Mode != n.s.Mode() {
			return nil, false, wire.Errorf(wire.CodeConflict, "session %q exists in %s mode", name, n.s.Mode())
		}
		if spec.BufferSet && spec.Buffer != n.s.BufferSize() {
			return nil, false, wire.Errorf(wire.CodeConflict, "session %q exists with a %d-byte buffer", name, n.s.BufferSize())
		}
		if have := n.s.EventContext(); spec.Context != nil && !slices.Equal(spec.Context, have) {
			return nil, false, wire.Errorf(wire.CodeConflict, "session %q exists with context %s, not %s", name, contextString(have), contextString(spec.Context))
		}
		return n, false, nil
	}
	if len(a.sessions) >= MaxSessions {
		return nil, false, wire.Errorf(wire.CodeLimit, "%d named sessions exist, the most an agent keeps", MaxSessions)
	}
	opts := []session.Option{session.WithMode(spec.Mode), session.WithBufferSize(spec.Buffer)}
	if len(spec.Context) > 0 {
		opts = append(opts, session.WithEventContext(spec.Context...))
	}
	s, err := session.New(name, opts...)
	if err != nil {
		return nil, false, newError(err)
	}
	return &named{s: s, created: time.Now()}, true, nil
}

// enableAll adds rules to s, removing those it added if one fails.
func enableAll(s *session.Session, rules []wire.Rule) error {
	added := make([]*session.Rule, 0, len(rules))
	for _, r := range rules {
		rule, err := s.EnableChecked(r.Pattern, r.Filter, r.Checked)
		if err != nil {
			for _, done := range added {
				s.Disable(done)
			}
			return sessionError(err)
		}
		added = append(added, rule)
	}
	return nil
}

// postDisable serves POST /v1/sessions/{name}/disable: remove the rules
// with the given patterns.
func (a *Agent) postDisable(w http.ResponseWriter, r *http.Request, p params) error {
	name, err := sessionName(p)
	if err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	patterns, err := request.ParseDisable(body)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.sessions[name]
	if n == nil {
		return notFound("session", name)
	}
	rules := n.s.Rules()
	var drop []*session.Rule
	for _, pat := range patterns {
		i := len(drop)
		for _, rule := range rules {
			if rule.Pattern == pat {
				drop = append(drop, rule)
			}
		}
		if len(drop) == i {
			return wire.Errorf(wire.CodeNotFound, "session %q has no rule %q (rules: %s)", name, pat, rulePatterns(rules))
		}
	}
	for _, rule := range drop {
		n.s.Disable(rule)
	}
	writeJSON(w, http.StatusOK, n.describe())
	return nil
}

func rulePatterns(rules []*session.Rule) string {
	if len(rules) == 0 {
		return "none"
	}
	ps := make([]string, len(rules))
	for i, r := range rules {
		ps[i] = r.Pattern
	}
	return strings.Join(ps, ", ")
}

// deleteSession serves DELETE /v1/sessions/{name}: destroy the session.
func (a *Agent) deleteSession(w http.ResponseWriter, r *http.Request, p params) error {
	name, err := sessionName(p)
	if err != nil {
		return err
	}
	if err := noBody(w, r); err != nil {
		return err
	}
	a.mu.Lock()
	n := a.sessions[name]
	delete(a.sessions, name)
	a.mu.Unlock()
	if n == nil {
		return notFound("session", name)
	}
	info := n.describe()
	n.destroy()
	info.State = n.s.State()
	writeJSON(w, http.StatusOK, info)
	return nil
}

// describeSession reports a session as the protocol shows it.
func describeSession(s *session.Session, created time.Time) wire.SessionInfo {
	si := wire.SessionInfo{
		Name:      s.Name(),
		Mode:      s.Mode().String(),
		State:     s.State(),
		Buffer:    s.BufferSize(),
		SubBuffer: s.SubBufSize(),
		Streams:   s.Streams(),
		Memory:    s.Memory(),
		Created:   created,
		Stats:     wireStats(s.Stats()),
	}
	si.Rules = ruleInfos(s)
	return si
}

// ruleInfos reports a session's rules, with the markers they leave out or
// refuse.
func ruleInfos(s *session.Session) []wire.RuleInfo {
	out := []wire.RuleInfo{}
	for _, r := range s.Rules() {
		ri := wire.RuleInfo{Pattern: r.Pattern, Filter: r.Filter}
		for _, err := range r.Refused() {
			var lo *session.LeftOutError
			if errors.As(err, &lo) {
				ri.LeftOut = append(ri.LeftOut, wire.LeftOut{Marker: lo.Marker, Missing: lo.Missing})
				continue
			}
			ri.Refused = append(ri.Refused, err.Error())
		}
		out = append(out, ri)
	}
	return out
}

func wireStats(st session.Stats) wire.Stats {
	out := wire.Stats{
		Recorded:  st.Recorded,
		Discarded: st.Discarded,
		Unsharded: st.Unsharded,
		Filtered:  st.Filtered,
		OverCost:  st.OverCost,
		Truncated: st.Truncated,
		Bytes:     st.Bytes,
		Delivered: st.Delivered,
		Markers:   make([]wire.MarkerStats, len(st.Markers)),
	}
	for i, m := range st.Markers {
		out.Markers[i] = wire.MarkerStats(m)
	}
	return out
}

// newError gives an error of session.New its protocol code.
func newError(err error) error {
	if errors.Is(err, session.ErrMemoryBudget) {
		return wire.Errorf(wire.CodeLimit, "%v", err)
	}
	if errors.Is(err, session.ErrNoThreadID) {
		return wire.Errorf(wire.CodeUnavailable, "%v", err)
	}
	return wire.Errorf(wire.CodeInvalid, "%v", err)
}

// sessionError gives errors of package session their protocol code.
func sessionError(err error) error {
	switch {
	case errors.Is(err, session.ErrFilter):
		return wire.Errorf(wire.CodeBadFilter, "%v", err)
	case errors.Is(err, marker.ErrBadPattern):
		return wire.Errorf(wire.CodeBadPattern, "%v", err)
	case errors.Is(err, marker.ErrSchemaConflict):
		return wire.Errorf(wire.CodeBadFilter, "%v", err)
	case errors.Is(err, session.ErrState):
		return wire.Errorf(wire.CodeConflict, "%v", err)
	}
	return wire.Errorf(wire.CodeInvalid, "%v", fmt.Errorf("enabling: %w", err))
}

// contextNames returns the names of context fields, as the protocol
// carries them (wire.Hello.Context); nil for none.
func contextNames(fields []session.ContextField) []string {
	var out []string
	for _, f := range fields {
		out = append(out, string(f))
	}
	return out
}

// contextString shows context fields in an error: "pid,tid", or "none".
func contextString(fields []session.ContextField) string {
	if len(fields) == 0 {
		return "none"
	}
	return strings.Join(contextNames(fields), ",")
}
