package browser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// tpSlice is a row of trace_processor's slice table, with its track.
type tpSlice struct {
	TS    int64
	Dur   int64
	Name  string
	Depth int
	Track string
}

// TestPerfettoSlices records the demo service, converts the trace to
// Perfetto's format, reads it back with Perfetto's own trace_processor and
// draws the slices it finds on a timeline in Chromium: the picture in
// docs/perfetto-slices.png (set TRACEMARK_PERFETTO_SCREENSHOT to a file
// name to keep it). The page must draw exactly the slices trace_processor
// reports, so the picture cannot show what the trace does not hold.
func TestPerfettoSlices(t *testing.T) {
	browserPath := chromium(t)
	tpquery, assets := traceProcessor(t)
	dir, exe, demo, env := setup(t)

	svc := start(t, env, demo, "--rate", "400", "--lifetime", "5m", "--attached")
	pid := field(svc.line(t, "ready "), "pid")
	trace := filepath.Join(dir, "demo-trace")
	run(t, env, exe, "record", "-p", pid, "-e", "*", "--duration", "2s", "-o", trace)
	pf := filepath.Join(dir, "demo.pftrace")
	run(t, env, exe, "convert", trace, "--to", "perfetto", "-o", pf)

	// The busiest 40 ms of slices (by count) after the first second, when
	// the service is warm.
	res := queryTP(t, tpquery, assets, pf, map[string]string{
		"slices": `select s.ts, s.dur, s.name, s.depth, t.name as track from slice s join track t on s.track_id = t.id order by s.ts`,
		"bad":    `select name, value from stats where severity in ('error', 'data_loss') and value <> 0`,
	})
	if len(res["bad"]) != 0 {
		t.Errorf("trace_processor reports problems with the converted trace: %v", res["bad"])
	}
	all := make([]tpSlice, 0, len(res["slices"]))
	for _, r := range res["slices"] {
		all = append(all, tpSlice{TS: num(t, r["ts"]), Dur: num(t, r["dur"]), Name: fmt.Sprint(r["name"]), Depth: int(num(t, r["depth"])), Track: fmt.Sprint(r["track"])})
	}
	var long int
	for _, s := range all {
		if s.Dur > 0 {
			long++
		}
	}
	if len(all) == 0 || long == 0 {
		t.Fatalf("trace_processor finds %d slices, %d of them with a duration, in the demo trace: want slices", len(all), long)
	}
	window := busiestWindow(all, 40_000_000)

	page := filepath.Join(dir, "slices.html")
	if err := os.WriteFile(page, []byte(timelinePage(window, len(all))), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t, browserPath, dir)
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page)); err != nil {
		t.Fatal(err)
	}
	drawn, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('rect.slice').length`))
	if err != nil {
		t.Fatal(err)
	}
	if drawn != len(window) {
		t.Errorf("the page draws %d slices, trace_processor has %d in the window", drawn, len(window))
	}
	if path := os.Getenv("TRACEMARK_PERFETTO_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("svg")))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	}
	t.Logf("trace_processor: %d slices (%d with a duration); drawn %d in the window", len(all), long, drawn)
}

// traceProcessor returns the query script of format/perfetto's tests and
// the directory of trace_processor.wasm, or skips the test.
func traceProcessor(t *testing.T) (script, assets string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("SKIP: node not found; the Perfetto picture needs trace_processor (run scripts/install-trace-processor)")
	}
	assets = os.Getenv("TRACEMARK_TRACE_PROCESSOR")
	if assets == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Skipf("SKIP: no cache directory (%v) and TRACEMARK_TRACE_PROCESSOR unset", err)
		}
		assets = filepath.Join(cache, "tracemark", "trace-processor-v55.3")
	}
	if _, err := os.Stat(filepath.Join(assets, "trace_processor.wasm")); err != nil {
		t.Skipf("SKIP: trace_processor.wasm not in %s: run scripts/install-trace-processor", assets)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "format", "perfetto", "testdata", "tpquery.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	return script, assets
}

func queryTP(t *testing.T, script, assets, trace string, queries map[string]string) map[string][]map[string]any {
	t.Helper()
	q, _ := json.Marshal(queries)
	cmd := exec.Command("node", script, assets, trace)
	cmd.Stdin = bytes.NewReader(q)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tpquery: %v\n%s", err, stderr.Bytes())
	}
	var res map[string][]map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("tpquery output: %v", err)
	}
	return res
}

// num reads a trace_processor integer, which tpquery prints as a string
// of digits to keep 64 bits exact.
func num(t *testing.T, v any) int64 {
	t.Helper()
	switch x := v.(type) {
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			t.Fatalf("trace_processor integer %q: %v", x, err)
		}
		return n
	case float64:
		return int64(x)
	}
	t.Fatalf("trace_processor value %v (%T): want an integer", v, v)
	return 0
}

func run(t *testing.T, env []string, exe string, args ...string) {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tracemark %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// busiestWindow returns the slices that start in the span of width ns
// holding the most slice starts (slices are sorted by start).
func busiestWindow(all []tpSlice, width int64) []tpSlice {
	best, bestN, j := 0, 0, 0
	for i := range all {
		for all[i].TS-all[j].TS > width {
			j++
		}
		if n := i - j + 1; n > bestN {
			best, bestN = j, n
		}
	}
	return all[best : best+bestN]
}

// timelinePage draws slices as Perfetto does: one row per track, nested
// slices one level lower, each a box as long as its duration (instants a
// thin mark), named when the box is wide enough.
func timelinePage(slices []tpSlice, total int) string {
	const width, left, rowH, levelH = 1300.0, 170.0, 58, 18
	t0, t1 := slices[0].TS, slices[0].TS
	rows := map[string]int{}
	var tracks []string
	depth := map[string]int{}
	for _, s := range slices {
		t1 = max(t1, s.TS+s.Dur)
		if _, ok := rows[s.Track]; !ok {
			rows[s.Track] = len(tracks)
			tracks = append(tracks, s.Track)
		}
		depth[s.Track] = max(depth[s.Track], s.Depth)
	}
	span := float64(max(t1-t0, 1))
	x := func(ts int64) float64 { return left + float64(ts-t0)/span*(width-left-10) }
	top := make([]int, len(tracks))
	y := 40
	for i, tr := range tracks {
		top[i] = y
		y += rowH + depth[tr]*levelH
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<!doctype html><meta charset="utf-8"><title>demo trace slices</title>
<style>body{margin:0;font:12px system-ui,sans-serif;background:#fff}text{fill:#222}.n{fill:#fff;font-size:11px}</style>
<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%d" style="display:block">
<text x="10" y="22" font-size="14">tracemark demo trace converted to Perfetto (%d slices; %.1f ms shown), slices as Perfetto's trace_processor reads them</text>
`, width, y+50, total, span/1e6)
	palette := []string{"#2463b5", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285", "#5f3dc4", "#e67700", "#495057", "#a61e4d", "#5c940d", "#1864ab"}
	colour := map[string]string{}
	var names []string
	var labels strings.Builder
	for i, tr := range tracks {
		fmt.Fprintf(&b, `<line x1="0" x2="%.0f" y1="%d" y2="%d" stroke="#ddd"/><text x="8" y="%d">%s</text>`+"\n",
			width, top[i]-4, top[i]-4, top[i]+14, html.EscapeString(clip(tr, 26)))
	}
	for _, s := range slices {
		c, ok := colour[s.Name]
		if !ok {
			c = palette[len(colour)%len(palette)]
			colour[s.Name] = c
			names = append(names, s.Name)
		}
		x0 := x(s.TS)
		w := max(x(s.TS+s.Dur)-x0, 1.5)
		yy := top[rows[s.Track]] + s.Depth*levelH
		fmt.Fprintf(&b, `<rect class="slice" x="%.1f" y="%d" width="%.1f" height="16" fill="%s"><title>%s</title></rect>`+"\n",
			x0, yy, w, c, html.EscapeString(s.Name))
		if w > 60 {
			fmt.Fprintf(&labels, `<text class="n" x="%.1f" y="%d">%s</text>`+"\n", x0+3, yy+12, html.EscapeString(clip(s.Name, int(w/6.5))))
		}
	}
	b.WriteString(labels.String()) // over every box, so no later box hides a name
	fmt.Fprintf(&b, `<text x="%.0f" y="%d">0 ms</text><text x="%.0f" y="%d" text-anchor="end">%.1f ms</text>`,
		left, y+14, width-10, y+14, span/1e6)
	lx := left
	for _, name := range names {
		fmt.Fprintf(&b, `<rect x="%.0f" y="%d" width="10" height="10" fill="%s"/><text x="%.0f" y="%d">%s</text>`,
			lx, y+30, colour[name], lx+14, y+39, html.EscapeString(name))
		lx += 24 + 6.5*float64(len(name))
	}
	b.WriteString("</svg>")
	return b.String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:max(n-1, 0)] + "…"
}
