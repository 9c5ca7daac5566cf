package otelcol

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// child is a process of the test, with its output read line by line.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	lines []string
	more  chan struct{}
	eof   chan struct{} // closed once the process exited and its output is read
}

func start(t *testing.T, env []string, argv0, exe string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Args[0] = argv0
	cmd.Env = env
	c := &child{cmd: cmd, more: make(chan struct{}), eof: make(chan struct{})}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); pw.Close() }()
	go func() {
		defer close(c.eof)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			close(c.more)
			c.more = make(chan struct{})
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.stdin.Close(); cmd.Process.Kill() })
	return c
}

// waitFor waits for a line holding s.
func (c *child) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		c.mu.Lock()
		for _, l := range c.lines {
			if strings.Contains(l, s) {
				c.mu.Unlock()
				return
			}
		}
		more := c.more
		c.mu.Unlock()
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("waiting for %q:\n%s", s, c.text())
		}
	}
}

func (c *child) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// TestCLIHostWide runs the tracemark CLI host-wide with --otlp against
// the collector's receiver: two instrumented processes, one attached
// after the recording began, each arrive as a resource of their own
// (process.pid, process.executable.name, service.name) with exactly
// their events, and each resource carries the recording's counts as
// monotonic cumulative sums, the buffer loss among them.
func TestCLIHostWide(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("SKIP: no go command to build the tracemark CLI")
	}
	tmp, err := os.MkdirTemp("", "tmo") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	cli := filepath.Join(tmp, "bin", "tracemark") // not tmp/tracemark: the agents' socket directory
	demoBin := filepath.Join(tmp, "bin", "demo")
	for out, pkg := range map[string]string{cli: "./cmd/tracemark", demoBin: "./examples/demo"} {
		build := exec.Command(gobin, "build", "-o", out, pkg)
		build.Dir = "../.."
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, b)
		}
	}
	s := &sink{}
	col := startCollector(t, freeAddr(t), s)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") && !strings.HasPrefix(kv, "TRACEMARK_") && !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	// The demo service builds and compiles its plugin into the test's
	// directory, not the user's cache.
	env = append(env, "XDG_RUNTIME_DIR="+tmp, "TRACEMARK_CACHE_DIR="+filepath.Join(tmp, "cache"))
	name := "otc" + filepath.Base(tmp)[3:]
	// The demo's sample service is the instrumented program: it serves
	// requests at a steady rate, each firing http:request_done, until
	// its standard input closes (at the test's end).
	demo := func() *child {
		return start(t, env, name, demoBin, "--rate", "200", "--lifetime", "2m", "--attached")
	}
	p1 := demo()
	p1.waitFor(t, "ready pid=")
	rec := start(t, env, "tracemark", cli, "record", "--name", name, "-e", "http:request_done", "-o", filepath.Join(tmp, "trace"), "--otlp", col.url())
	// stats --all --otlp beside it, to a collector of its own.
	statsSink := &sink{}
	statsCol := startCollector(t, freeAddr(t), statsSink)
	st := start(t, env, "tracemark", cli, "stats", "--name", name, "-e", "http:request_done", "--by", "pid,status", "--otlp", statsCol.url())
	for _, c := range []*child{rec, st} {
		c.waitFor(t, fmt.Sprintf("Attached to pid %d", p1.cmd.Process.Pid))
	}
	p2 := demo() // attached after the recording began
	p2.waitFor(t, "ready pid=")
	for _, c := range []*child{rec, st} {
		c.waitFor(t, fmt.Sprintf("Attached to pid %d", p2.cmd.Process.Pid))
	}
	// Until the collector has events of both processes.
	for deadline := time.Now().Add(60 * time.Second); ; {
		seen := map[int64]bool{}
		for _, r := range s.logRecords() {
			pid, _ := r.res.Resource().Attributes().Get("process.pid")
			seen[pid.Int()] = true
		}
		if seen[int64(p1.cmd.Process.Pid)] && seen[int64(p2.cmd.Process.Pid)] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector has events of pids %v only:\n%s", seen, rec.text())
		}
		<-time.After(10 * time.Millisecond) // polling the sink, not ordering events
	}
	rec.cmd.Process.Signal(syscall.SIGINT)
	rec.waitFor(t, "events from 2 processes")
	st.cmd.Process.Signal(syscall.SIGINT)
	t.Run("stats", func(t *testing.T) { checkStatsHostWide(t, st, statsSink, name, p1, p2) })
	// What the CLI says it exported per process: the events, and as many
	// spans (the demo's http:request_done declares its latency a span).
	want := map[int64]int{}
	for _, p := range []*child{p1, p2} {
		re := regexp.MustCompile(fmt.Sprintf(`pid %d \(%s\): OTLP: (\d+) of (\d+) events and spans \((\d+) spans\) exported`, p.cmd.Process.Pid, name))
		rec.waitFor(t, fmt.Sprintf("pid %d (%s): OTLP: ", p.cmd.Process.Pid, name))
		m := re.FindStringSubmatch(rec.text())
		if m == nil || m[1] != m[2] {
			t.Fatalf("pid %d: export line %v:\n%s", p.cmd.Process.Pid, m, rec.text())
		}
		total, _ := strconv.Atoi(m[1])
		spans, _ := strconv.Atoi(m[3])
		if total != 2*spans {
			t.Errorf("pid %d: %d exported, %d of them spans: want a span per event", p.cmd.Process.Pid, total, spans)
		}
		want[int64(p.cmd.Process.Pid)] = spans
	}
	gotSpans := map[int64]int{}
	s.mu.Lock()
	for _, td := range s.traces {
		for i := range td.ResourceSpans().Len() {
			rs := td.ResourceSpans().At(i)
			pid, _ := rs.Resource().Attributes().Get("process.pid")
			for j := range rs.ScopeSpans().Len() {
				gotSpans[pid.Int()] += rs.ScopeSpans().At(j).Spans().Len()
			}
		}
	}
	s.mu.Unlock()
	if fmt.Sprint(gotSpans) != fmt.Sprint(want) {
		t.Errorf("spans per resource pid %v, want %v", gotSpans, want)
	}

	got := map[int64]int{}
	for _, r := range s.logRecords() {
		res := r.res.Resource().Attributes()
		pid, _ := res.Get("process.pid")
		exe, _ := res.Get("process.executable.name")
		svc, _ := res.Get("service.name")
		if exe.Str() != name || svc.Str() != "unknown_service:"+name || r.rec.EventName() != "http:request_done" {
			t.Errorf("event %q: resource %v", r.rec.EventName(), res.AsRaw())
		}
		if st, ok := r.rec.Attributes().Get("status"); !ok || st.Int() < 100 {
			t.Errorf("event of pid %d without its status: %v", pid.Int(), r.rec.Attributes().AsRaw())
		}
		got[pid.Int()]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events per resource pid %v, want %v", got, want)
	}

	// Each resource has the counts: events per marker as recorded, and
	// the loss (none at this rate), as monotonic cumulative sums.
	type key struct {
		pid  int64
		name string
	}
	counts := map[key]int64{}
	s.mu.Lock()
	for _, md := range s.metrics {
		for i := range md.ResourceMetrics().Len() {
			rm := md.ResourceMetrics().At(i)
			pid, _ := rm.Resource().Attributes().Get("process.pid")
			for j := range rm.ScopeMetrics().Len() {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := range ms.Len() {
					m := ms.At(k)
					if m.Type() != pmetric.MetricTypeSum || !m.Sum().IsMonotonic() ||
						m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						t.Errorf("metric %s of pid %d is not a monotonic cumulative sum", m.Name(), pid.Int())
						continue
					}
					dp := m.Sum().DataPoints()
					for d := range dp.Len() {
						k := key{pid.Int(), m.Name()}
						counts[k] = max(counts[k], dp.At(d).IntValue())
					}
				}
			}
		}
	}
	s.mu.Unlock()
	for pid, n := range want {
		if counts[key{pid, "tracemark.events"}] != int64(n) {
			t.Errorf("pid %d: tracemark.events %d, want %d (%v)", pid, counts[key{pid, "tracemark.events"}], n, counts)
		}
		if v, ok := counts[key{pid, "tracemark.events.lost"}]; !ok || v != 0 {
			t.Errorf("pid %d: tracemark.events.lost %d (sent: %v), want 0", pid, v, ok)
		}
	}
}

// checkStatsHostWide checks what stats --all --otlp sent: each process's
// counts under its own resource, pid being the resource and status the
// points' attribute, exactly the table's rows of that process.
func checkStatsHostWide(t *testing.T, st *child, s *sink, name string, procs ...*child) {
	for _, p := range procs {
		st.waitFor(t, fmt.Sprintf("pid %d (%s): OTLP: counts exported to ", p.cmd.Process.Pid, name))
	}
	select {
	case <-st.eof:
	case <-time.After(60 * time.Second):
		t.Fatalf("stats did not exit:\n%s", st.text())
	}
	if code := st.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("stats exited %d:\n%s", code, st.text())
	}
	// The table: COUNT MARKER PID STATUS.
	table := map[string]int64{}
	row := regexp.MustCompile(`(?m)^(\d+)\s+http:request_done\s+(\d+)\s+(\d+)\s*$`)
	for _, m := range row.FindAllStringSubmatch(st.text(), -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		table[m[2]+" "+m[3]] = n
	}
	if len(table) == 0 {
		t.Fatalf("no rows in the table:\n%s", st.text())
	}
	got := map[string]int64{}
	lost := map[int64]bool{}
	s.mu.Lock()
	for _, md := range s.metrics {
		for i := range md.ResourceMetrics().Len() {
			rm := md.ResourceMetrics().At(i)
			res := rm.Resource().Attributes()
			pid, _ := res.Get("process.pid")
			exe, _ := res.Get("process.executable.name")
			svc, _ := res.Get("service.name")
			if exe.Str() != name || svc.Str() != "unknown_service:"+name {
				t.Errorf("metrics resource %v", res.AsRaw())
			}
			for j := range rm.ScopeMetrics().Len() {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := range ms.Len() {
					m := ms.At(k)
					if m.Type() != pmetric.MetricTypeSum || !m.Sum().IsMonotonic() ||
						m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						t.Errorf("metric %s of pid %d is not a monotonic cumulative sum", m.Name(), pid.Int())
						continue
					}
					dp := m.Sum().DataPoints()
					for d := range dp.Len() {
						attrs := dp.At(d).Attributes()
						switch m.Name() {
						case "tracemark.events":
							if _, ok := attrs.Get("pid"); ok {
								t.Errorf("a point of pid %d has attribute pid: %v", pid.Int(), attrs.AsRaw())
							}
							mk, _ := attrs.Get("marker")
							status, _ := attrs.Get("status")
							if mk.Str() != "http:request_done" {
								t.Errorf("point of marker %q", mk.Str())
							}
							k := fmt.Sprintf("%d %s", pid.Int(), status.AsString())
							got[k] = max(got[k], dp.At(d).IntValue())
						case "tracemark.events.lost":
							lost[pid.Int()] = true
							if v := dp.At(d).IntValue(); v != 0 {
								t.Errorf("pid %d: tracemark.events.lost %d, want 0", pid.Int(), v)
							}
						}
					}
				}
			}
		}
	}
	s.mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(table) {
		t.Errorf("tracemark.events per resource pid and status %v, want the table's %v:\n%s", got, table, st.text())
	}
	for _, p := range procs {
		if !lost[int64(p.cmd.Process.Pid)] {
			t.Errorf("pid %d: no tracemark.events.lost", p.cmd.Process.Pid)
		}
	}
}
