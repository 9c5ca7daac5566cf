// Package browser tests the web view of "tracemark ui" in a real browser:
// Debian's Chromium, driven by chromedp over the DevTools protocol,
// against a real traced process. It is a module of its own so that the
// main module does not depend on chromedp.
//
// Without Chromium the test skips and says so; .ci/run installs it. Set
// TRACEMARK_WEBUI_SCREENSHOT to a file name to keep a screenshot of the
// page (docs/webui.png is one).
//
// The same browser draws the demo trace's slices as Perfetto's
// trace_processor reads them from the converted trace
// (TRACEMARK_PERFETTO_SCREENSHOT keeps docs/perfetto-slices.png).
package browser

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

// chromium returns the browser to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "SKIP: Chromium is not installed (Debian package chromium; .ci/run installs it): the web view is not tested in a browser"
	fmt.Fprintln(os.Stderr, msg) // visible without -v
	t.Skip(msg)
	return ""
}

// proc is a child process whose output lines the test reads.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func start(t *testing.T, env []string, exe string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdin: stdin, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return p
}

// line returns the first output line that starts with prefix.
func (p *proc) line(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("%v ended before printing %q", p.cmd.Args, prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("%v printed no %q", p.cmd.Args, prefix)
		}
	}
}

func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// TestWebUI loads the page against a real process and uses it as a person
// would: it enables a marker and checks that the agent has it, watches the
// rate plot update, sees a filter error shown, plots a histogram, records
// and downloads a trace, and finds no console error.
func TestWebUI(t *testing.T) {
	browserPath := chromium(t)
	dir, exe, demo, env := setup(t)

	// The traced process: the demo's sample service, with its own load.
	svc := start(t, env, demo, "--rate", "200", "--lifetime", "5m", "--attached")
	ready := svc.line(t, "ready ")
	pid, socket := field(ready, "pid"), field(ready, "socket")
	agent := client.NewClient(socket)
	defer agent.Close()

	ui := start(t, env, exe, "ui", "-p", pid)
	pageURL := strings.TrimPrefix(ui.line(t, "tracemark ui: open "), "tracemark ui: open ")
	base, token, ok := strings.Cut(pageURL, "/?token=")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") || len(token) != 32 {
		t.Fatalf("ui printed %q: want http://127.0.0.1:PORT/?token=<32 hex digits>", pageURL)
	}
	for _, path := range []string{"/", "/api/live?pid=" + pid, "/assets/app.js", "/?token=" + strings.Repeat("0", 32)} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s without the token: %s, want 403", path, resp.Status)
		}
	}

	ctx := browser(t, browserPath, dir)
	console := collectConsole(ctx)

	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\nconsole: %v", what, err, console.all())
		}
	}
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			t.Fatalf("waiting until %s (%s): %v\nconsole: %v", what, expr, err, console.all())
		}
	}
	const doneRow = `#markers tr[data-marker="http:request_done"]`

	step("loading the page", chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.CSS(doneRow)))

	// Enable a marker from the page; the agent must have it.
	step("enabling http:request_done",
		chromedp.SetValue(chromedp.ID("enable-glob"), "http:request_done"),
		chromedp.Clear(chromedp.ID("enable-filter")),
		chromedp.Click(chromedp.ID("enable-btn")))
	poll("the page shows the marker on", `document.querySelector('`+doneRow+` td.on') !== null`)
	ms, err := agent.Markers(ctx, "http:request_done")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || !ms[0].Enabled || !slices.Contains(ms[0].Sessions, "ui") {
		t.Fatalf("the agent's http:request_done after enabling from the page: %+v, want enabled in session ui", ms)
	}

	// The rate plot updates with the events of the enabled marker.
	poll("the rate plot has points", `tracemarkUI.ratePlot !== null && tracemarkUI.ratePlot.data[0].length >= 2`)
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`tracemarkUI.ratePlot.data[0].length`))
	if err != nil {
		t.Fatal(err)
	}
	poll("the rate plot gets a new point with the session's events", fmt.Sprintf(
		`tracemarkUI.ratePlot.data[0].length > %d && tracemarkUI.ratePlot.series.some((s, i) => s.label === 'session ui (recorded)' && tracemarkUI.ratePlot.data[i].at(-1) > 0)`, n))

	// A filter that does not compile is shown next to the form.
	step("enabling with a bad filter",
		chromedp.SetValue(chromedp.ID("enable-filter"), "status >>> 1"),
		chromedp.Click(chromedp.ID("enable-btn")))
	poll("the filter error is shown", `document.getElementById('enable-error').textContent.includes('bad_filter')`)
	msg, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID("enable-error")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "status >>> 1") || !strings.Contains(msg, "Syntax error") {
		t.Errorf("the filter error shown: %q, want the filter and the compiler's message", msg)
	}

	// A live histogram of the request latency, as stats counts it.
	step("starting a histogram",
		chromedp.Evaluate[chromedp.Void](`(() => {
			const m = document.getElementById('hist-marker');
			m.value = 'http:request_done';
			m.dispatchEvent(new Event('change'));
			document.getElementById('hist-field').value = 'latency';
		})()`),
		chromedp.Click(chromedp.ID("hist-start")))
	poll("the histogram plot updates with events",
		`tracemarkUI.histPlot !== null && tracemarkUI.histUpdates >= 2 && tracemarkUI.histPlot.data[1].some((c) => c > 0)`)
	labels, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`tracemarkUI.histLabels`))
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) == 0 || !strings.HasSuffix(labels[0], "s)") {
		t.Errorf("histogram bucket labels %q: want duration ranges such as [16.4µs, 32.8µs)", labels)
	}

	// Record, stop and download a trace.
	step("starting a recording",
		chromedp.SetValue(chromedp.ID("record-glob"), "http:*"),
		chromedp.Click(chromedp.ID("record-start")))
	poll("the recording has events",
		`(() => { const r = document.querySelector('#recordings tr[data-state="recording"]'); return r !== null && +r.children[3].textContent > 0; })()`)
	step("stopping the recording", chromedp.Click(chromedp.CSS("#recordings button.stop")))
	poll("the download link is shown", `document.querySelector('#recordings a.download') !== null`)
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#recordings a.download"), "href"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(href.Value, "/api/record/") {
		t.Fatalf("download link %q: want /api/record/...", href.Value)
	}
	checkTrace(t, base+href.Value)
	resp, err := http.Get(base + strings.Split(href.Value, "?")[0])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the download without the token: %s, want 403", resp.Status)
	}

	// Modules and taint: the demo service loads a proprietary plugin.
	poll("the modules table shows the plugin", `document.querySelector('#modules tbody tr') !== null && document.getElementById('taint').textContent.includes('Tainted')`)

	// Unload the plugin from the page, then load it again from its file;
	// a file that is not a module is refused with insmod's error.
	mods, err := agent.Modules(ctx)
	if err != nil || len(mods.Modules) != 1 {
		t.Fatalf("the demo service's modules: %+v, %v", mods, err)
	}
	plugin := mods.Modules[0]
	row := fmt.Sprintf(`#modules tr[data-module=%q]`, plugin.Name)
	step("unloading the plugin",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('modules-force').checked = true`),
		chromedp.Click(chromedp.CSS(row+" button.rmmod")))
	poll("the plugin leaves the modules table", `document.querySelector('`+row+`') === null`)
	if mods, err := agent.Modules(ctx); err != nil || len(mods.Modules) != 0 {
		t.Fatalf("the agent's modules after unloading from the page: %+v, %v", mods, err)
	}
	step("loading a file that is not a module",
		chromedp.SetValue(chromedp.ID("insmod-path"), exe),
		chromedp.Click(chromedp.ID("insmod-btn")))
	poll("the load error is shown", `document.getElementById('modules-error').textContent.includes('not a wasm module')`)
	step("loading the plugin again",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('modules-force').checked = false`),
		chromedp.SetValue(chromedp.ID("insmod-path"), plugin.Path),
		chromedp.Click(chromedp.ID("insmod-btn")))
	poll("the plugin is back in the modules table", `document.querySelector('`+row+`') !== null && document.getElementById('modules-error').textContent === ''`)
	if mods, err := agent.Modules(ctx); err != nil || len(mods.Modules) != 1 || mods.Modules[0].Name != plugin.Name {
		t.Fatalf("the agent's modules after loading from the page: %+v, %v", mods, err)
	}

	if path := os.Getenv("TRACEMARK_WEBUI_SCREENSHOT"); path != "" {
		// Two more ticks: the rates that the recording's end reset are
		// measured again.
		ticks, err := chromedp.Run(ctx, chromedp.Evaluate[int](`tracemarkUI.ticks`))
		if err != nil {
			t.Fatal(err)
		}
		poll("two more ticks", fmt.Sprintf(`tracemarkUI.ticks >= %d`, ticks+2))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	}

	// The bad filter's and the bad module's answers are 400s, which
	// Chromium logs as failed resources: those are expected, once each.
	expected := map[string]int{"/api/enable": 1, "/api/insmod": 1}
	seen := 0
	for _, m := range console.all() {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			if m.Source == "network" && strings.Contains(m.Text, "400") {
				if u, err := url.Parse(m.URL); err == nil && expected[u.Path] > 0 {
					expected[u.Path]--
					seen++
					continue
				}
			}
			t.Errorf("console %s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line)
		}
	}
	t.Logf("%d console messages, %d of them the expected 400s of the bad filter and the bad module", len(console.all()), seen)
}

// setup builds tracemark and the demo's sample service into a short
// temporary directory (socket paths are limited) and returns the
// directory, the two binaries and an environment whose agents and caches
// live in that directory.
func setup(t *testing.T) (dir, exe, demo string, env []string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tmui")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	exe, demo = filepath.Join(dir, "tracemark"), filepath.Join(dir, "demo")
	for out, pkg := range map[string]string{exe: "./cmd/tracemark", demo: "./examples/demo"} {
		build := exec.Command("go", "build", "-o", out, pkg)
		build.Dir = filepath.Join("..", "..")
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, b)
		}
	}
	runtimeDir := filepath.Join(dir, "run")
	if err := os.Mkdir(runtimeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, wire.EnvRuntimeDir+"=") || strings.HasPrefix(kv, client.EnvSocket+"=")
	}), wire.EnvRuntimeDir+"="+runtimeDir,
		// Built and compiled modules go to the test's directory, not the
		// user's cache (the service builds its plugin there).
		"TRACEMARK_CACHE_DIR="+filepath.Join(dir, "cache"))
	return dir, exe, demo, env
}

// browser starts headless Chromium with its profile in dir and returns
// the context that drives it; the test's end closes it.
func browser(t *testing.T, browserPath, dir string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	ctx, cancel = chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browserPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(dir, "chromium")),
		chromedp.WindowSize(1400, 1000))
	t.Cleanup(cancel)
	ctx, cancel = chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", browserPath, err)
	}
	return ctx
}

// checkTrace downloads a trace archive and checks that it holds a CTF
// trace with events.
func checkTrace(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("downloading %s: %s", url, resp.Status)
	}
	gz, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	var streamBytes int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(h.Name))
		if strings.HasPrefix(filepath.Base(h.Name), "channel") {
			streamBytes += h.Size
		}
	}
	if !slices.Contains(names, "metadata") || streamBytes == 0 {
		t.Fatalf("the downloaded trace holds %v (%d bytes of streams): want metadata and events", names, streamBytes)
	}
}

// consoleLog collects the page's console messages.
type consoleLog struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func collectConsole(ctx context.Context) *consoleLog {
	c := &consoleLog{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *consoleLog) all() []chromedp.ConsoleMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}
