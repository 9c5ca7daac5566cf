package main

import (
	"archive/tar"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/webui"
	"github.com/tracemark/tracemark/internal/wire"
)

// uiServer answers the web page's API by talking to agents over the same
// client as the other commands. It holds no state about processes but
// the recordings started from the page; rates are computed per event
// stream, so that each open page has its own.
type uiServer struct {
	a     *app
	fixed *target // -p: the one process shown; nil with --all
	dir   string  // where recordings go
	temp  bool    // dir is ours, removed at close

	// ctx is the recordings' context, cancelled at close so that none
	// outlives the server even if its agent stops answering.
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	recs map[string]*uiRecording
	seq  int
	wg   sync.WaitGroup // recordings running
}

// uiLiveInterval is how often the page's live data is refreshed.
const uiLiveInterval = time.Second

func newUIServer(ctx context.Context, a *app, pid, keep string) (*uiServer, error) {
	s := &uiServer{a: a, recs: map[string]*uiRecording{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if pid != "" || a.socket != "" {
		t, err := a.connect(ctx, pid)
		if err != nil {
			return nil, err
		}
		rctx, cancel := a.requestCtx(ctx)
		defer cancel()
		info, err := t.client.Info(rctx)
		if err != nil {
			return nil, err
		}
		t.pid = info.PID
		s.fixed = t
	}
	if keep != "" {
		if err := os.MkdirAll(keep, 0o700); err != nil {
			return nil, fmt.Errorf("--keep: %w", err)
		}
		s.dir = keep
	} else {
		d, err := os.MkdirTemp("", "tracemark-ui-")
		if err != nil {
			return nil, err
		}
		s.dir, s.temp = d, true
	}
	return s, nil
}

func (s *uiServer) scope() string {
	if s.fixed != nil {
		return fmt.Sprintf("process %d", s.fixed.pid)
	}
	return "all your instrumented processes"
}

// close ends the recordings still running and removes a temporary
// directory. Call stopRecordings first to end them cleanly.
func (s *uiServer) close() {
	s.cancel()
	s.wg.Wait()
	if s.temp {
		os.RemoveAll(s.dir)
	}
}

func (s *uiServer) mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/processes", s.processes)
	mux.HandleFunc("GET /api/markers", withTarget(s, s.markers))
	mux.HandleFunc("GET /api/sessions", withTarget(s, s.sessions))
	mux.HandleFunc("POST /api/enable", withTarget(s, s.enable))
	mux.HandleFunc("POST /api/disable", withTarget(s, s.disable))
	mux.HandleFunc("GET /api/modules", withTarget(s, s.modules))
	mux.HandleFunc("POST /api/insmod", withTarget(s, s.insmod))
	mux.HandleFunc("POST /api/rmmod", withTarget(s, s.rmmod))
	mux.HandleFunc("GET /api/live", withTarget(s, s.live))
	mux.HandleFunc("GET /api/hist", withTarget(s, s.hist))
	mux.HandleFunc("POST /api/record", withTarget(s, s.startRecording))
	mux.HandleFunc("POST /api/record/{id}/stop", s.stopRecording)
	mux.HandleFunc("GET /api/record/{id}/trace.tar.gz", s.download)
}

// withTarget resolves the pid query parameter to an agent before h.
func withTarget(s *uiServer, h func(http.ResponseWriter, *http.Request, *target)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := s.target(r.URL.Query().Get("pid"))
		if err != nil {
			apiError(w, err)
			return
		}
		defer func() {
			if t != s.fixed {
				t.client.Close()
			}
		}()
		h(w, r, t)
	}
}

// target returns the process of a pid parameter: the -p process (which
// the parameter may name or leave out), or with --all any process of
// this user.
func (s *uiServer) target(pid string) (*target, error) {
	if s.fixed != nil {
		if pid != "" && pid != strconv.Itoa(s.fixed.pid) {
			return nil, wire.Errorf(wire.CodeNotFound, "this server shows process %d only", s.fixed.pid)
		}
		return s.fixed, nil
	}
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return nil, wire.Errorf(wire.CodeInvalid, "pid %q: not a pid", pid)
	}
	sock, err := client.FindSocket(n)
	if err != nil {
		return nil, err
	}
	return &target{pid: n, client: client.NewClient(sock)}, nil
}

// apiError answers an error as {"error": {"code", "message"}}: an
// agent's own error with its status, others as 502 (the agent could not
// be reached) or 500.
func apiError(w http.ResponseWriter, err error) {
	var we *wire.Error
	if !errors.As(err, &we) {
		status := http.StatusInternalServerError
		if errors.Is(err, client.ErrNoAgent) {
			status = http.StatusBadGateway
		}
		we = &wire.Error{Status: status, Code: wire.CodeInternal, Message: err.Error()}
	}
	w.Header().Set("Content-Type", wire.ContentTypeJSON)
	w.WriteHeader(cmp.Or(we.Status, http.StatusInternalServerError))
	_ = json.NewEncoder(w).Encode(wire.ErrorBody{Error: we})
}

func apiJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", wire.ContentTypeJSON)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads a small JSON request body strictly.
func decodeBody(r *http.Request, v any) error {
	d := json.NewDecoder(io.LimitReader(r.Body, wire.MaxRequestBytes))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return wire.Errorf(wire.CodeBadRequest, "request body: %v", err)
	}
	return nil
}

// uiProcess is a row of the processes table.
type uiProcess struct {
	PID   int        `json:"pid"`
	Info  *wire.Info `json:"info,omitempty"`
	Error string     `json:"error,omitempty"`
}

func (s *uiServer) processes(w http.ResponseWriter, r *http.Request) {
	out := []uiProcess{}
	if s.fixed != nil {
		ctx, cancel := s.a.requestCtx(r.Context())
		defer cancel()
		info, err := s.fixed.client.Info(ctx)
		p := uiProcess{PID: s.fixed.pid, Info: info}
		if err != nil {
			p.Info, p.Error = nil, err.Error()
		}
		apiJSON(w, append(out, p))
		return
	}
	for _, p := range s.a.discover(r.Context()) {
		row := uiProcess{PID: p.pid, Info: p.info}
		if p.err != nil {
			row.Info, row.Error = nil, p.err.Error()
		}
		out = append(out, row)
	}
	apiJSON(w, out)
}

func (s *uiServer) markers(w http.ResponseWriter, r *http.Request, t *target) {
	ctx, cancel := s.a.requestCtx(r.Context())
	defer cancel()
	ms, err := t.client.Markers(ctx, r.URL.Query().Get("glob"))
	answer(w, ms, err)
}

func (s *uiServer) sessions(w http.ResponseWriter, r *http.Request, t *target) {
	ctx, cancel := s.a.requestCtx(r.Context())
	defer cancel()
	list, err := t.client.SessionList(ctx)
	answer(w, list, err)
}

// uiEnable is the body of POST /api/enable, /api/disable (Glob empty:
// destroy the session) and /api/record (no Session).
type uiEnable struct {
	Session string `json:"session"`
	Glob    string `json:"glob"`
	Filter  string `json:"filter,omitempty"`
	Mode    string `json:"mode,omitempty"`
}

func (s *uiServer) enable(w http.ResponseWriter, r *http.Request, t *target) {
	var req uiEnable
	if err := decodeBody(r, &req); err != nil {
		apiError(w, err)
		return
	}
	if err := wire.CheckSessionName(req.Session); err != nil {
		apiError(w, wire.Errorf(wire.CodeInvalid, "%v", err))
		return
	}
	if req.Glob == "" {
		apiError(w, wire.Errorf(wire.CodeInvalid, "which markers? give a name or a glob"))
		return
	}
	ctx, cancel := s.a.requestCtx(r.Context())
	defer cancel()
	si, err := enableChecked(ctx, t.client, req.Session, wire.EnableRequest{Rules: rules([]string{req.Glob}, req.Filter), Mode: req.Mode})
	answer(w, si, err)
}

func (s *uiServer) disable(w http.ResponseWriter, r *http.Request, t *target) {
	var req uiEnable
	if err := decodeBody(r, &req); err != nil {
		apiError(w, err)
		return
	}
	if err := wire.CheckSessionName(req.Session); err != nil {
		apiError(w, wire.Errorf(wire.CodeInvalid, "%v", err))
		return
	}
	ctx, cancel := s.a.requestCtx(r.Context())
	defer cancel()
	if req.Glob == "" {
		if err := t.client.Destroy(ctx, req.Session); err != nil {
			apiError(w, err)
			return
		}
		apiJSON(w, struct{}{})
		return
	}
	si, err := t.client.Disable(ctx, req.Session, []string{req.Glob})
	answer(w, si, err)
}

// answer writes the outcome of a request to the agent: its error, or v
// as JSON.
func answer[T any](w http.ResponseWriter, v T, err error) {
	if err != nil {
		apiError(w, err)
		return
	}
	apiJSON(w, v)
}

// uiModules is the answer of GET /api/modules: the taint report, which
// every process gives, and the modules of one that loads them.
type uiModules struct {
	Taint        *wire.TaintReport `json:"taint"`
	Modules      []wire.ModuleInfo `json:"modules"`
	ModulesError string            `json:"modules_error,omitempty"`
}

func (s *uiServer) modules(w http.ResponseWriter, r *http.Request, t *target) {
	ctx, cancel := s.a.requestCtx(r.Context())
	defer cancel()
	rep, err := t.client.Taint(ctx)
	if err != nil {
		apiError(w, err)
		return
	}
	out := uiModules{Taint: rep, Modules: []wire.ModuleInfo{}}
	if rep.Loading {
		list, err := t.client.Modules(ctx)
		if err != nil {
			out.ModulesError = err.Error()
		} else {
			out.Modules = list.Modules
		}
	}
	apiJSON(w, out)
}

// uiInsmod is the body of POST /api/insmod: what "tracemark insmod"
// takes. Path is a file on this host, which the process reads with its
// own permissions, as insmod's FILE.
type uiInsmod struct {
	Path   string `json:"path"`
	Policy string `json:"policy,omitempty"`
	Force  bool   `json:"force,omitempty"`
}

func (s *uiServer) insmod(w http.ResponseWriter, r *http.Request, t *target) {
	var req uiInsmod
	if err := decodeBody(r, &req); err != nil {
		apiError(w, err)
		return
	}
	if req.Path == "" {
		apiError(w, wire.Errorf(wire.CodeInvalid, "which module? give the path of a .wasm file"))
		return
	}
	if !filepath.IsAbs(req.Path) {
		// The process resolves the path, not this server: a relative
		// path would name a file relative to a directory nobody sees.
		apiError(w, wire.Errorf(wire.CodeInvalid, "module path %q: give an absolute path (the process reads the file itself)", wire.Clip(req.Path)))
		return
	}
	// Compiling a module takes longer than a request: as insmod, at
	// least a minute.
	ctx, cancel := context.WithTimeout(r.Context(), s.a.atLeast(false, time.Minute))
	defer cancel()
	mi, err := t.client.Insmod(ctx, wire.InsmodRequest{Path: req.Path, Force: req.Force, Policy: req.Policy})
	answer(w, mi, err)
}

// uiRmmod is the body of POST /api/rmmod, as "tracemark rmmod" takes it.
type uiRmmod struct {
	Name  string `json:"name"`
	Force bool   `json:"force,omitempty"`
}

func (s *uiServer) rmmod(w http.ResponseWriter, r *http.Request, t *target) {
	var req uiRmmod
	if err := decodeBody(r, &req); err != nil {
		apiError(w, err)
		return
	}
	if err := wire.CheckModuleName(req.Name); err != nil {
		apiError(w, wire.Errorf(wire.CodeInvalid, "%v", err))
		return
	}
	ctx, cancel := s.a.requestCtx(r.Context())
	defer cancel()
	mi, err := t.client.Rmmod(ctx, req.Name, req.Force)
	answer(w, mi, err)
}

// uiTick is one event of the live stream: the process, its markers with
// their event rates, its sessions and the page's recordings.
type uiTick struct {
	Time     time.Time         `json:"time"`
	Info     *wire.Info        `json:"info"`
	Markers  []uiMarker        `json:"markers"`
	Sessions *wire.SessionList `json:"sessions"`
	// SessionRates are the events per second that each session
	// recorded since the previous tick (-1 on the first): the rate of a
	// marker counts only events that were read, and a named session's
	// are read only when someone snapshots it.
	SessionRates []uiRate      `json:"session_rates"`
	Recordings   []uiRecStatus `json:"recordings"`
}

// uiRate is a session's recording rate.
type uiRate struct {
	Session string  `json:"session"`
	Rate    float64 `json:"rate"`
}

type uiMarker struct {
	wire.Marker
	State string `json:"state"`
	// Rate is events per second since the previous tick (-1 on the
	// first): the events that the agent's sessions delivered, discarded
	// or filtered out, which counts a named session's only once read.
	Rate float64 `json:"rate"`
}

// live streams a tick per second until the page goes away. A failed
// request to the agent is sent as an "agent_error" event and the stream
// goes on: the process may come back (or the page shows it gone).
func (s *uiServer) live(w http.ResponseWriter, r *http.Request, t *target) {
	ev, err := webui.StartEvents(w)
	if err != nil {
		apiError(w, err)
		return
	}
	last := map[string]uint64{}
	var lastTime time.Time
	tick := time.NewTicker(uiLiveInterval)
	defer tick.Stop()
	for {
		out, err := s.tick(r.Context(), t, last, lastTime)
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			if ev.Send("agent_error", map[string]string{"message": err.Error()}) != nil {
				return
			}
		} else {
			lastTime = out.Time
			if ev.Send("tick", out) != nil {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

func (s *uiServer) tick(ctx context.Context, t *target, last map[string]uint64, lastTime time.Time) (*uiTick, error) {
	ctx, cancel := s.a.requestCtx(ctx)
	defer cancel()
	info, err := t.client.Info(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := t.client.Markers(ctx, "")
	if err != nil {
		return nil, err
	}
	sl, err := t.client.SessionList(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := &uiTick{Time: now, Info: info, Sessions: sl, Markers: make([]uiMarker, len(ms)), Recordings: s.recStatus(t.pid)}
	dt := now.Sub(lastTime).Seconds()
	for i, m := range ms {
		um := uiMarker{Marker: m, State: markerState(m), Rate: -1}
		if prev, ok := last[m.Name]; ok && dt > 0 && m.Events >= prev {
			um.Rate = float64(m.Events-prev) / dt
		}
		last[m.Name] = m.Events
		out.Markers[i] = um
	}
	out.SessionRates = []uiRate{}
	for _, si := range sl.Sessions {
		key := "session\x00" + si.Name
		r := uiRate{Session: si.Name, Rate: -1}
		if prev, ok := last[key]; ok && dt > 0 && si.Stats.Recorded >= prev {
			r.Rate = float64(si.Stats.Recorded-prev) / dt
		}
		last[key] = si.Stats.Recorded
		out.SessionRates = append(out.SessionRates, r)
	}
	return out, nil
}

// uiHist is an event of the histogram stream: the counts and log2
// histograms of "tracemark stats", with bucket labels.
type uiHist struct {
	Events     uint64       `json:"events"`
	Lost       uint64       `json:"lost"`
	Counts     []countRow   `json:"counts"`
	Field      string       `json:"field"`
	Histograms []uiHistData `json:"histograms"`
}

// uiHistData is one histogram: Counts[i] events in the bucket Labels[i],
// from its first non-empty bucket to its last.
type uiHistData struct {
	Marker string   `json:"marker"`
	Value  string   `json:"value,omitempty"`
	Count  uint64   `json:"count"`
	Avg    string   `json:"avg"`
	Min    string   `json:"min"`
	Max    string   `json:"max"`
	First  int      `json:"first"` // the index of the first bucket shown
	Labels []string `json:"labels"`
	Counts []uint64 `json:"counts"`
}

// hist counts the events of the markers matching glob, as stats does,
// with a histogram of the field hist, for as long as the page listens:
// an ephemeral recording that ends when the stream does. The events:
// "started" once recording (the markers matched), "hist" after each
// stats frame, and "failure" with why it could not start or stopped.
func (s *uiServer) hist(w http.ResponseWriter, r *http.Request, t *target) {
	q := r.URL.Query()
	glob, field, by, filter := q.Get("glob"), q.Get("field"), q.Get("by"), q.Get("filter")
	ev, err := webui.StartEvents(w)
	if err != nil {
		apiError(w, err)
		return
	}
	fail := func(err error) { _ = ev.Send("failure", errorJSON(err)) }
	if glob == "" || field == "" {
		fail(wire.Errorf(wire.CodeInvalid, "the histogram needs markers and a field"))
		return
	}
	spec := aggSpec{hist: field}
	if by != "" {
		spec.by = []string{by}
	}
	if err := checkFields(r.Context(), s.a, t, []string{glob}, spec); err != nil {
		fail(err)
		return
	}
	req := wire.RecordRequest{Rules: rules([]string{glob}, filter), Client: "tracemark ui", StatsInterval: uiLiveInterval.String()}
	stream, err := recordChecked(r.Context(), t.client, req)
	if err != nil {
		fail(err)
		return
	}
	defer stream.Close()
	if err := ev.Send("started", map[string][]string{"matched": stream.Hello.Matched}); err != nil {
		return
	}
	g := newAggregator(spec)
	c := newCapture(stream, nil)
	c.onRecord = g.add
	var sendErr error
	c.onStats = func() {
		if sendErr == nil {
			sendErr = ev.Send("hist", g.uiResult(c.lost()))
		}
	}
	if err := c.run(); err != nil && r.Context().Err() == nil {
		fail(err)
		return
	}
	if sendErr == nil && c.end != nil {
		_ = ev.Send("hist", g.uiResult(c.lost()))
		fail(fmt.Errorf("the recording ended: %s", c.end.Reason))
	}
}

func errorJSON(err error) *wire.Error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return &wire.Error{Code: wire.CodeInvalid, Message: err.Error()}
	}
	return &wire.Error{Code: wire.CodeInternal, Message: err.Error()}
}

// uiResult is the aggregator's state for the page.
func (g *aggregator) uiResult(lost uint64) uiHist {
	res := g.result(lost)
	out := uiHist{Events: res.Events, Lost: res.Lost, Counts: res.Counts, Field: g.hist, Histograms: []uiHistData{}}
	for _, k := range g.keys() {
		h := k.hist
		if h == nil || h.count == 0 {
			continue
		}
		d := uiHistData{Marker: k.marker, Value: strings.Join(k.values, ","), Count: h.count,
			Avg: h.value(h.avg()), Min: h.value(h.minV), Max: h.value(h.maxV), First: -1}
		for b, n := range h.buckets {
			if n == 0 && d.First < 0 {
				continue
			}
			if d.First < 0 {
				d.First = b
			}
			lo, hi := h.bucketRange(b)
			d.Labels = append(d.Labels, "["+lo+", "+hi+")")
			d.Counts = append(d.Counts, n)
		}
		// Trim the empty buckets after the last one used.
		for len(d.Counts) > 0 && d.Counts[len(d.Counts)-1] == 0 {
			d.Counts, d.Labels = d.Counts[:len(d.Counts)-1], d.Labels[:len(d.Labels)-1]
		}
		out.Histograms = append(out.Histograms, d)
	}
	return out
}

// uiRecording is a recording started from the page, into a trace
// directory under the server's directory.
type uiRecording struct {
	id   string
	pid  int
	t    *target
	dir  string
	glob string

	mu      sync.Mutex
	hello   wire.Hello
	state   string // "recording", "stopping", "done" or "failed"
	err     string
	events  uint64
	bytes   uint64
	lost    uint64
	started time.Time
	done    chan struct{}
}

// uiRecStatus is how the page sees a recording.
type uiRecStatus struct {
	ID      string    `json:"id"`
	PID     int       `json:"pid"`
	Glob    string    `json:"glob"`
	State   string    `json:"state"`
	Error   string    `json:"error,omitempty"`
	Events  uint64    `json:"events"`
	Bytes   uint64    `json:"bytes"`
	Lost    uint64    `json:"lost"`
	Started time.Time `json:"started"`
	Trace   string    `json:"trace"`
}

func (rec *uiRecording) status() uiRecStatus {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return uiRecStatus{ID: rec.id, PID: rec.pid, Glob: rec.glob, State: rec.state, Error: rec.err,
		Events: rec.events, Bytes: rec.bytes, Lost: rec.lost, Started: rec.started, Trace: rec.dir}
}

func (s *uiServer) recStatus(pid int) []uiRecStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []uiRecStatus{}
	for i := 1; i <= s.seq; i++ {
		if rec := s.recs[strconv.Itoa(i)]; rec != nil && rec.pid == pid {
			out = append(out, rec.status())
		}
	}
	return out
}

func (s *uiServer) startRecording(w http.ResponseWriter, r *http.Request, t *target) {
	var req uiEnable
	if err := decodeBody(r, &req); err != nil {
		apiError(w, err)
		return
	}
	if req.Glob == "" {
		apiError(w, wire.Errorf(wire.CodeInvalid, "which markers? give a name or a glob"))
		return
	}
	// The recording outlives this request: it ends when stopped from the
	// page or when the server stops.
	ctx, cancel := context.WithCancel(s.ctx)
	stream, err := recordChecked(ctx, t.client, wire.RecordRequest{
		Rules: rules([]string{req.Glob}, req.Filter), Mode: req.Mode, Client: "tracemark ui", StatsInterval: uiLiveInterval.String()})
	if err != nil {
		cancel()
		apiError(w, err)
		return
	}
	s.mu.Lock()
	s.seq++
	id := strconv.Itoa(s.seq)
	s.mu.Unlock()
	// The id keeps recordings started in the same second apart.
	dir := filepath.Join(s.dir, defaultTraceDir("tracemark-ui", stream.Hello)+"-"+id)
	trace, err := createTrace(dir, stream.Hello)
	if err != nil {
		stream.Close()
		cancel()
		apiError(w, err)
		return
	}
	tc := t
	if t != s.fixed {
		// The request's client is closed when the request ends.
		tc = &target{pid: t.pid, client: client.NewClient(t.client.Socket())}
	}
	rec := &uiRecording{id: id, pid: t.pid, t: tc, dir: dir, glob: req.Glob, hello: stream.Hello,
		state: "recording", started: time.Now(), done: make(chan struct{})}
	s.mu.Lock()
	s.recs[id] = rec
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		s.runRecording(rec, stream, trace)
	}()
	apiJSON(w, rec.status())
}

func (s *uiServer) runRecording(rec *uiRecording, stream *client.Stream, trace *traceOut) {
	defer close(rec.done)
	defer stream.Close()
	c := newCapture(stream, trace)
	update := func() {
		rec.mu.Lock()
		rec.events, rec.bytes, rec.lost = c.events, c.bytes, c.lost()
		rec.mu.Unlock()
	}
	c.onStats = update
	runErr := c.run()
	closeErr := trace.close()
	update()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	switch {
	case runErr != nil:
		rec.state, rec.err = "failed", runErr.Error()
	case closeErr != nil:
		rec.state, rec.err = "failed", closeErr.Error()
	case c.end.Reason == wire.EndError:
		rec.state, rec.err = "failed", fmt.Sprintf("the agent ended the recording: %v", c.end.Error)
	default:
		rec.state = "done"
	}
	if rec.t != s.fixed {
		rec.t.client.Close()
	}
}

func (s *uiServer) recording(id string) *uiRecording {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recs[id]
}

// stopRecording asks the agent to end a recording and waits until the
// trace is complete.
func (s *uiServer) stopRecording(w http.ResponseWriter, r *http.Request) {
	rec := s.recording(r.PathValue("id"))
	if rec == nil {
		apiError(w, wire.Errorf(wire.CodeNotFound, "no recording %q", r.PathValue("id")))
		return
	}
	if err := s.stop(r.Context(), rec); err != nil {
		apiError(w, err)
		return
	}
	apiJSON(w, rec.status())
}

func (s *uiServer) stop(ctx context.Context, rec *uiRecording) error {
	rec.mu.Lock()
	running := rec.state == "recording"
	if running {
		rec.state = "stopping"
	}
	rec.mu.Unlock()
	if running {
		sctx, cancel := s.a.requestCtx(ctx)
		defer cancel()
		if err := rec.t.client.Stop(sctx, rec.hello.Recording); err != nil {
			return err
		}
	}
	select {
	case <-rec.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopRecordings ends the running recordings cleanly, at exit.
func (s *uiServer) stopRecordings() {
	s.mu.Lock()
	var recs []*uiRecording
	for _, rec := range s.recs {
		recs = append(recs, rec)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.a.timeout)
	defer cancel()
	for _, rec := range recs {
		_ = s.stop(ctx, rec)
	}
}

// download sends a finished recording's trace directory as a .tar.gz.
func (s *uiServer) download(w http.ResponseWriter, r *http.Request) {
	rec := s.recording(r.PathValue("id"))
	if rec == nil {
		apiError(w, wire.Errorf(wire.CodeNotFound, "no recording %q", r.PathValue("id")))
		return
	}
	if st := rec.status(); st.State != "done" && st.State != "failed" {
		apiError(w, wire.Errorf(wire.CodeConflict, "recording %s is %s: stop it first", rec.id, st.State))
		return
	}
	name := filepath.Base(rec.dir)
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+".tar.gz"))
	if err := writeTarGz(w, rec.dir, name); err != nil {
		// The headers are gone: cut the answer so that the file is
		// incomplete rather than wrong.
		panic(http.ErrAbortHandler)
	}
}

// writeTarGz writes the regular files of dir as a gzipped tar under the
// directory name prefix.
func writeTarGz(w io.Writer, dir, prefix string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(filepath.Join(prefix, rel))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("trace archive: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("trace archive: %w", err)
	}
	return gz.Close()
}
