package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/webui"
	"github.com/tracemark/tracemark/internal/wire"
)

// uiClient talks to a "tracemark ui" started by a test.
type uiClient struct {
	t           *testing.T
	base, token string
}

func (e *env) startUI(args ...string) (*proc, *uiClient) {
	e.t.Helper()
	p := e.start("cli", append([]string{"ui"}, args...)...)
	// Runs before start's cleanup, which waits for the exit: the ui
	// serves until Ctrl-C.
	e.t.Cleanup(func() { p.cmd.Process.Signal(os.Interrupt) })
	line := p.stdout.waitFor(e.t, "tracemark ui: open ")
	u := strings.TrimPrefix(line, "tracemark ui: open ")
	base, token, ok := strings.Cut(u, "/?"+webui.TokenParam+"=")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		e.t.Fatalf("ui printed %q: want a URL on 127.0.0.1 with a token", line)
	}
	return p, &uiClient{t: e.t, base: base, token: token}
}

// do sends a request with the token and decodes a JSON answer into out.
func (c *uiClient) do(method, path string, body, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Error(err)
		return -1
	}
	req.Header.Set(webui.TokenHeader, c.token)
	// Errorf, not Fatalf: tests call this from several goroutines.
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Errorf("%s %s: %v", method, path, err)
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Errorf("%s %s: %s: %v: %s", method, path, resp.Status, err, b)
		}
	}
	return resp.StatusCode
}

// sse is an event stream read by a test.
type sse struct {
	body io.Closer
	sc   *bufio.Scanner
}

func (c *uiClient) events(path string) *sse {
	c.t.Helper()
	resp, err := http.Get(c.base + path + "&" + webui.TokenParam + "=" + c.token)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return &sse{body: resp.Body, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event's name and data.
func (s *sse) next(t *testing.T) (string, []byte) {
	t.Helper()
	var name string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			return name, []byte(strings.TrimPrefix(line, "data: "))
		}
	}
	t.Fatalf("event stream ended: %v", s.sc.Err())
	return "", nil
}

// nextOf skips events until one named name, failing at a "failure".
func (s *sse) nextOf(t *testing.T, name string, v any) {
	t.Helper()
	for {
		n, data := s.next(t)
		if n == "failure" && name != "failure" {
			t.Fatalf("waiting for %s: failure %s", name, data)
		}
		if n == name {
			if err := json.Unmarshal(data, v); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}

// Every request without the token is refused, whatever it asks for.
func TestUIRequiresToken(t *testing.T) {
	e := newEnv(t)
	target := e.startTarget()
	ui, c := e.startUI("-p", strconv.Itoa(target.pid()))
	pid := strconv.Itoa(target.pid())
	for _, path := range []string{"/", "/?token=", "/assets/app.js", "/api/processes", "/api/markers?pid=" + pid,
		"/api/live?pid=" + pid, "/api/hist?pid=" + pid + "&glob=test:value&field=lat", "/api/record/1/trace.tar.gz",
		"/api/live?pid=" + pid + "&token=" + strings.Repeat("0", len(c.token))} {
		resp, err := http.Get(c.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s without the token: %s, want 403", path, resp.Status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+"/api/enable", strings.NewReader(`{"session":"x","glob":"*"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /api/enable without the token: %s, want 403", resp.Status)
	}
	ms, err := client.NewClient(filepath.Join(e.socketDir(), pid+".sock")).Markers(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Enabled {
			t.Errorf("%s was enabled by a request without the token", m.Name)
		}
	}
	var procs []uiProcess
	if code := c.do(http.MethodGet, "/api/processes", nil, &procs); code != http.StatusOK || len(procs) != 1 || procs[0].PID != target.pid() {
		t.Errorf("GET /api/processes with the token: %d %+v", code, procs)
	}
	ui.signal(t, os.Interrupt)
	if code := ui.wait(t); code != exitOK {
		t.Errorf("ui exited %d after Ctrl-C, want 0; stderr:\n%s", code, ui.stderr.text())
	}
}

// The API enables and disables in the agent, reports a bad filter as the
// agent's error, counts a histogram exactly as stats does, and records a
// trace that it hands over as a .tar.gz.
func TestUIAPI(t *testing.T) {
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	_, c := e.startUI("--all")
	agent := client.NewClient(filepath.Join(e.socketDir(), pid+".sock"))

	var bad wire.ErrorBody
	if code := c.do(http.MethodPost, "/api/enable?pid="+pid, uiEnable{Session: "ui", Glob: "test:value", Filter: "i >>> 1"}, &bad); code != http.StatusBadRequest || bad.Error == nil || bad.Error.Code != wire.CodeBadFilter {
		t.Fatalf("enabling with a bad filter: %d %+v, want 400 bad_filter", code, bad.Error)
	}
	var si wire.SessionInfo
	if code := c.do(http.MethodPost, "/api/enable?pid="+pid, uiEnable{Session: "ui", Glob: "test:value", Filter: "i >= 0"}, &si); code != http.StatusOK || si.Name != "ui" {
		t.Fatalf("enabling: %d %+v", code, si)
	}
	ms, err := agent.Markers(t.Context(), "test:value")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || !ms[0].Enabled || !slices.Contains(ms[0].Sessions, "ui") {
		t.Fatalf("after enabling from the ui the agent has %+v", ms)
	}
	if code := c.do(http.MethodPost, "/api/disable?pid="+pid, uiEnable{Session: "ui"}, nil); code != http.StatusOK {
		t.Fatalf("destroying the session: %d", code)
	}
	if ss, err := agent.Sessions(t.Context()); err != nil || len(ss) != 0 {
		t.Fatalf("sessions after destroying from the ui: %+v, %v", ss, err)
	}

	// The histogram: lat is 1, 2, 4 and 8µs in turn.
	h := c.events("/api/hist?pid=" + pid + "&glob=test:value&field=lat")
	var started struct{ Matched []string }
	h.nextOf(t, "started", &started)
	target.do(t, "fire 100")
	var hist uiHist
	for hist.Events < 100 {
		h.nextOf(t, "hist", &hist)
	}
	if hist.Events != 100 || len(hist.Histograms) != 1 {
		t.Fatalf("histogram after 100 events: %+v", hist)
	}
	hd := hist.Histograms[0]
	wantLabels := []string{"[512ns, 1.02µs)", "[1.02µs, 2.05µs)", "[2.05µs, 4.1µs)", "[4.1µs, 8.19µs)"}
	if !slices.Equal(hd.Counts, []uint64{25, 25, 25, 25}) || !slices.Equal(hd.Labels, wantLabels) ||
		hd.Count != 100 || hd.Min != "1µs" || hd.Max != "8µs" {
		t.Errorf("histogram of lat: %+v, want 25 events in each of %q, min 1µs, max 8µs", hd, wantLabels)
	}
	h.body.Close()

	// A histogram of a field that is not numeric fails at once.
	var fail wire.Error
	c.events("/api/hist?pid="+pid+"&glob=test:value&field=key").nextOf(t, "failure", &fail)
	if !strings.Contains(fail.Message, "numeric") {
		t.Errorf("histogram of a string field: %+v, want it refused as not numeric", fail)
	}

	// A recording, stopped, then downloaded.
	var rec uiRecStatus
	if code := c.do(http.MethodPost, "/api/record?pid="+pid, uiEnable{Glob: "test:*"}, &rec); code != http.StatusOK || rec.State != "recording" {
		t.Fatalf("starting a recording: %d %+v", code, rec)
	}
	var early wire.ErrorBody
	if code := c.do(http.MethodGet, "/api/record/"+rec.ID+"/trace.tar.gz", nil, &early); code != http.StatusConflict {
		t.Errorf("downloading a running recording: %d %+v, want 409", code, early.Error)
	}
	target.do(t, "fire 30")
	target.do(t, "other 20")
	if code := c.do(http.MethodPost, "/api/record/"+rec.ID+"/stop", nil, &rec); code != http.StatusOK || rec.State != "done" || rec.Events != 50 {
		t.Fatalf("stopping the recording: %d %+v, want done with 50 events", code, rec)
	}
	req, _ := http.NewRequest(http.MethodGet, c.base+"/api/record/"+rec.ID+"/trace.tar.gz?token="+c.token, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %s", resp.Status)
	}
	dir := t.TempDir()
	untar(t, resp.Body, dir)
	traces, _ := filepath.Glob(filepath.Join(dir, "tracemark-ui-*"))
	if len(traces) != 1 {
		t.Fatalf("the archive holds %v, want one trace directory", traces)
	}
	if _, err := os.Stat(filepath.Join(traces[0], "metadata")); err != nil {
		t.Fatalf("the downloaded trace has no metadata: %v", err)
	}
	bt := babeltrace(t, traces[0])
	if n, m := countLines(bt, "test:value"), countLines(bt, "test:other"); n != 30 || m != 20 {
		t.Errorf("babeltrace2 reads %d test:value and %d test:other events, want 30 and 20", n, m)
	}
}

// untar unpacks a .tar.gz into dir, refusing names that leave it.
func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	gz, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("the archive has a name outside its directory: %q", h.Name)
		}
		p := filepath.Join(dir, h.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUIUsage(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"ui", "-p", "1", "--all"}, exitUsage, "not both"},
		{[]string{"ui", "-p", "2147483647"}, exitError, "does not exist"},
		{[]string{"ui", "extra"}, exitUsage, "unknown command"},
	} {
		r := e.cli(tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("tracemark %s: exit %d, want %d with %q:\n%s", strings.Join(tt.args, " "), r.code, tt.code, tt.msg, r.stderr)
		}
	}
}

// Ctrl-C ends the recordings started from the page cleanly: with --keep,
// their traces are complete and stay.
func TestUIStopsRecordingsAtExit(t *testing.T) {
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	keep := filepath.Join(e.runtime, "kept")
	ui, c := e.startUI("-p", pid, "--keep", keep)
	var rec uiRecStatus
	if code := c.do(http.MethodPost, "/api/record?pid="+pid, uiEnable{Glob: "test:value"}, &rec); code != http.StatusOK {
		t.Fatalf("starting a recording: %d %+v", code, rec)
	}
	target.do(t, "fire 10")
	ui.signal(t, os.Interrupt)
	if code := ui.wait(t); code != exitOK {
		t.Fatalf("ui exited %d after Ctrl-C, want 0; stderr:\n%s", code, ui.stderr.text())
	}
	if filepath.Dir(rec.Trace) != keep {
		t.Fatalf("the recording went to %s, want a directory in %s", rec.Trace, keep)
	}
	if n := countLines(babeltrace(t, rec.Trace), "test:value"); n != 10 {
		t.Errorf("the kept trace has %d test:value events, want 10", n)
	}
}

// Pages that start, watch and stop recordings at the same time each get
// their own, complete.
func TestUIConcurrentRecordings(t *testing.T) {
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	_, c := e.startUI("-p", pid)
	const n = 4
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var rec uiRecStatus
			if code := c.do(http.MethodPost, "/api/record?pid="+pid, uiEnable{Glob: "test:value"}, &rec); code != http.StatusOK {
				t.Errorf("starting recording %d: %d", i, code)
			}
			ids[i] = rec.ID
		})
		wg.Go(func() {
			live := c.events("/api/live?pid=" + pid)
			var tick uiTick
			live.nextOf(t, "tick", &tick)
			live.body.Close()
		})
	}
	wg.Wait()
	if slices.Contains(ids, "") || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != n {
		t.Fatalf("recording ids %q: want %d distinct", ids, n)
	}
	target.do(t, "fire 40")
	for _, id := range ids {
		wg.Go(func() {
			var rec uiRecStatus
			if code := c.do(http.MethodPost, "/api/record/"+id+"/stop", nil, &rec); code != http.StatusOK || rec.State != "done" || rec.Events != 40 {
				t.Errorf("stopping recording %s: %d %+v, want done with 40 events", id, code, rec)
			}
		})
	}
	wg.Wait()
}

// The page loads and unloads modules as insmod and rmmod do: the agent
// has the module after a load from the ui, refuses what insmod refuses
// with the same error, and keeps a recorded module unless forced.
func TestUIModules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plugin := pluginCopy(t, e.runtime, "classifier.wasm")
	target := e.startModTarget()
	pid := strconv.Itoa(target.pid())
	_, c := e.startUI("-p", pid)
	agent := client.NewClient(filepath.Join(e.socketDir(), pid+".sock"))
	defer agent.Close()

	notWasm := filepath.Join(e.runtime, "notes.wasm")
	if err := os.WriteFile(notWasm, []byte("not a module"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		body uiInsmod
		code int
		want string
	}{
		{"no path", uiInsmod{}, http.StatusBadRequest, "give the path"},
		{"a relative path", uiInsmod{Path: "classifier.wasm"}, http.StatusBadRequest, "absolute path"},
		{"not a module", uiInsmod{Path: notWasm}, http.StatusBadRequest, "not a wasm module"},
		{"an unknown policy", uiInsmod{Path: plugin, Policy: "lax"}, http.StatusBadRequest, "want strict, kernel, proprietary or open"},
	} {
		var bad wire.ErrorBody
		if code := c.do(http.MethodPost, "/api/insmod", tc.body, &bad); code != tc.code || bad.Error == nil || !strings.Contains(bad.Error.Message, tc.want) {
			t.Errorf("insmod from the ui with %s: %d %+v, want %d and %q", tc.what, code, bad.Error, tc.code, tc.want)
		}
	}
	if list, err := agent.Modules(t.Context()); err != nil || len(list.Modules) != 0 {
		t.Fatalf("the agent's modules after refused loads: %+v, %v", list, err)
	}

	var mi wire.ModuleInfo
	if code := c.do(http.MethodPost, "/api/insmod", uiInsmod{Path: plugin}, &mi); code != http.StatusOK || mi.Name != "classifier" || mi.State != "live" {
		t.Fatalf("insmod from the ui: %d %+v", code, mi)
	}
	list, err := agent.Modules(t.Context())
	if err != nil || len(list.Modules) != 1 || list.Modules[0].Name != "classifier" || list.Modules[0].Path != plugin {
		t.Fatalf("the agent's modules after a load from the ui: %+v, %v", list, err)
	}
	var dup wire.ErrorBody
	if code := c.do(http.MethodPost, "/api/insmod", uiInsmod{Path: plugin}, &dup); code != http.StatusConflict {
		t.Errorf("loading the same module twice from the ui: %d %+v, want 409", code, dup.Error)
	}

	// Recorded, the module stays unless forced.
	if _, err := agent.Enable(t.Context(), "rec", wire.EnableRequest{Rules: rules([]string{"classifier:*"}, "")}); err != nil {
		t.Fatal(err)
	}
	var busy wire.ErrorBody
	if code := c.do(http.MethodPost, "/api/rmmod", uiRmmod{Name: "classifier"}, &busy); code != http.StatusConflict || busy.Error == nil {
		t.Errorf("unloading a recorded module from the ui: %d %+v, want 409", code, busy.Error)
	}
	var bad wire.ErrorBody
	if code := c.do(http.MethodPost, "/api/rmmod", uiRmmod{Name: "../x"}, &bad); code != http.StatusBadRequest {
		t.Errorf("unloading a bad name from the ui: %d %+v, want 400", code, bad.Error)
	}
	if code := c.do(http.MethodPost, "/api/rmmod", uiRmmod{Name: "classifier", Force: true}, &mi); code != http.StatusOK || mi.Name != "classifier" {
		t.Fatalf("forced rmmod from the ui: %d %+v", code, mi)
	}
	if list, err := agent.Modules(t.Context()); err != nil || len(list.Modules) != 0 {
		t.Errorf("the agent's modules after rmmod from the ui: %+v, %v", list, err)
	}
	var gone wire.ErrorBody
	if code := c.do(http.MethodPost, "/api/rmmod", uiRmmod{Name: "classifier"}, &gone); code != http.StatusNotFound {
		t.Errorf("unloading a module that is not loaded: %d %+v, want 404", code, gone.Error)
	}
}
