package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tracemark/tracemark/internal/otlptest"
)

// metricsOf returns, for the metrics requests whose resource has
// process.pid pid, the highest value of the Sum point name{key=val} (the
// sums are cumulative; an earlier periodic export may arrive after the
// final one), or -1 if none has it; mono is false if one of them is not a
// monotonic cumulative sum.
func metricsOf(col *otlptest.Receiver, pid int, name, key, val string) (v int64, mono bool) {
	v, mono = -1, true
	for _, b := range col.Metrics() {
		if otlptest.MetricsResource(b)["process.pid"] != int64(pid) {
			continue
		}
		if x := otlptest.SumValue(b, name, key, val); x >= 0 {
			v = max(v, x)
			if m, _ := otlptest.SumMonotonic(b, name); !m {
				mono = false
			}
		}
	}
	return v, mono
}

// record and stream --otlp host-wide: each process's events go out with
// that process as the resource (host pid, program, service name), a
// process attached after the start too, and each process's counts as
// metrics of its own resource.
func TestOTLPHostWide(t *testing.T) {
	t.Parallel()
	e := hostEnv(t)
	recCol, streamCol := otlptest.NewReceiver(t), otlptest.NewReceiver(t)
	p1 := e.startTarget()
	rec := e.start("cli", "record", "--name", e.argv0, "-e", "test:*", "-o", filepath.Join(e.runtime, "host"), "--otlp", recCol.URL())
	sm := e.start("cli", "stream", "--name", e.argv0, "-e", "test:*", "--otlp", streamCol.URL())
	for _, c := range []*proc{rec, sm} {
		c.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", p1.pid(), e.argv0))
	}
	p2 := e.startTarget() // after the start
	for _, c := range []*proc{rec, sm} {
		c.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", p2.pid(), e.argv0))
	}
	p1.do(t, "fire 4")
	p2.do(t, "fire 6")
	p2.do(t, "other 1")
	sm.stdout.waitFor(t, fmt.Sprintf(" %d %s test:other:", p2.pid(), e.argv0))
	for _, c := range []*proc{rec, sm} {
		c.signal(t, os.Interrupt)
		if code := c.wait(t); code != 0 {
			t.Fatalf("%v exited %d:\n%s%s", c.cmd.Args, code, c.stdout.text(), c.stderr.text())
		}
	}
	for _, tc := range []struct {
		name string
		col  *otlptest.Receiver
		out  string // where the export is reported
	}{{"record", recCol, rec.stdout.text()}, {"stream", streamCol, sm.stderr.text()}} {
		t.Run(tc.name, func(t *testing.T) {
			perPID := map[int64]map[string]int{}
			for _, l := range tc.col.Logs() {
				pid, _ := l.Resource["process.pid"].(int64)
				if l.Resource["process.executable.name"] != e.argv0 || l.Resource["service.name"] != "unknown_service:"+e.argv0 {
					t.Fatalf("event %s of pid %d: resource %v", l.Name, pid, l.Resource)
				}
				if perPID[pid] == nil {
					perPID[pid] = map[string]int{}
				}
				perPID[pid][l.Name]++
			}
			want := map[int64]map[string]int{int64(p1.pid()): {"test:value": 4}, int64(p2.pid()): {"test:value": 6, "test:other": 1}}
			if fmt.Sprint(perPID) != fmt.Sprint(want) {
				t.Errorf("events per resource pid %v, want %v", perPID, want)
			}
			for _, p := range []struct{ pid, n int }{{p1.pid(), 4}, {p2.pid(), 7}} {
				if !strings.Contains(tc.out, fmt.Sprintf("pid %d (%s): OTLP: %d of %d events exported to %s", p.pid, e.argv0, p.n, p.n, tc.col.URL())) {
					t.Errorf("no export line for pid %d:\n%s", p.pid, tc.out)
				}
			}
			if v, mono := metricsOf(tc.col, p2.pid(), metricEvents, "marker", "test:value"); v != 6 || !mono {
				t.Errorf("pid %d: %s{marker=test:value} = %d (monotonic cumulative: %v), want 6", p2.pid(), metricEvents, v, mono)
			}
			if v, mono := metricsOf(tc.col, p1.pid(), metricLost, "reason", "buffer_full"); v != 0 || !mono {
				t.Errorf("pid %d: %s = %d (monotonic cumulative: %v), want 0", p1.pid(), metricLost, v, mono)
			}
		})
	}
}

// record --otlp reports the events the traced process's buffers lost as a
// monotonic sum, equal to the count in the summary, beside the events
// recorded per marker: a fleet operator sees the loss in the back end.
// With --no-output too, where the summary and the collector are all
// there is: fired = recorded + lost, and every recorded event arrives.
func TestRecordOTLPLostMetric(t *testing.T) {
	t.Parallel()
	for _, noOutput := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-output=%v", noOutput), func(t *testing.T) {
			t.Parallel()
			col := otlptest.NewReceiver(t)
			e := newEnv(t)
			// A request, too, may wait as long as the exit does: one that
			// timed out while the busy receiver decoded it would be sent
			// again, and the counts after it could miss the exit's bound.
			e.environ = append(e.environ, "OTEL_EXPORTER_OTLP_TIMEOUT=45000")
			target := e.startTarget()
			// --timeout bounds the wait for the exports at exit: the
			// test receiver decodes every record, which takes more than
			// the default 10 s when the machine is busy (-race, other
			// tests), and this test is about the counts, not that bound
			// (which stays below the test's own wait for the exit).
			args := []string{"--buffer", "16K", "--progress", "none", "--timeout", "45s", "--otlp", col.URL()}
			var rec *proc
			if noOutput {
				rec = e.recordNoOutput(t, target, args...)
			} else {
				rec = e.record(t, target, filepath.Join(e.runtime, "trace"), args...)
			}
			target.do(t, fmt.Sprintf("fire %d", lossyEvents))
			rec.signal(t, os.Interrupt)
			if code := rec.wait(t); code != 0 {
				t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
			}
			out := rec.stdout.text()
			recorded, dropped := summaryCounts(t, out)
			got, lost := int64(recorded), int64(dropped)
			if lost == 0 {
				t.Fatalf("nothing lost: the test needs a full buffer\n%s", out)
			}
			if got+lost != lossyEvents {
				t.Errorf("summary: %d recorded + %d lost, fired %d", got, lost, lossyEvents)
			}
			if v, mono := metricsOf(col, target.pid(), metricLost, "reason", "buffer_full"); v != lost || !mono {
				t.Errorf("%s = %d (monotonic cumulative: %v), want the %d of the summary", metricLost, v, mono, lost)
			}
			if v, _ := metricsOf(col, target.pid(), metricEvents, "marker", "test:value"); v != got {
				t.Errorf("%s{marker=test:value} = %d, want the %d events recorded", metricEvents, v, got)
			}
			// A burst may fill the exporter's queue: what it drops is
			// counted, and the rest arrives.
			// OTLP delivers at least once: a request that timed out (10 s,
			// on a machine busy enough) may have reached the receiver
			// before its retry did, or before the exporter gave up on it
			// at exit (unsent). Each event has its own i: the events that
			// arrived, each counted once, are those exported and perhaps
			// some of those unsent.
			x := regexp.MustCompile(`OTLP: (\d+) of (\d+) events exported[^\n]*?(?:, (\d+) unsent at exit\))?(?:\n|$)`).FindStringSubmatch(out)
			logs, arrived := col.Logs(), map[any]bool{}
			for _, l := range logs {
				arrived[l.Attrs["i"]] = true
			}
			if x == nil {
				t.Fatalf("no OTLP line:\n%s", out)
			}
			exported, _ := strconv.Atoi(x[1])
			unsent, _ := strconv.Atoi(x[3])
			if x[2] != strconv.FormatInt(got, 10) || len(arrived) < exported || len(arrived) > exported+unsent {
				t.Errorf("the collector received %d events (%d distinct), the summary says %d recorded:\n%s", len(logs), len(arrived), got, out)
			}
		})
	}
}

// A daemon session with "otlp" sends each process's events and counts to
// the collector, the process as the resource, beside its trace files; on
// SIGHUP a changed otlp section restarts the session towards the new
// collector, as a change of any other key does, and the old exporter
// says what it sent.
func TestDaemonOTLP(t *testing.T) {
	t.Parallel()
	e := hostEnv(t)
	col1, col2 := otlptest.NewReceiver(t), otlptest.NewReceiver(t)
	out := filepath.Join(e.runtime, "traces")
	conf := filepath.Join(e.runtime, "daemon.json")
	session := func(url string) string {
		return `{"name": "otel", "match": "` + e.argv0 + `", "enable": ["test:value"], "otlp": {"endpoint": "` + url +
			`", "headers": {"x-tenant": "t1"}}}`
	}
	writeConfig(t, conf, out, session(col1.URL()))
	d := e.start("cli", "daemon", "--config", conf)
	d.stderr.waitFor(t, "daemon: session otel (record")
	p := e.startTarget()
	d.stderr.waitFor(t, fmt.Sprintf("daemon: session otel: recording pid %d", p.pid()))
	p.do(t, "fire 5")

	writeConfig(t, conf, out, session(col2.URL()))
	d.signal(t, syscall.SIGHUP)
	d.stderr.waitFor(t, fmt.Sprintf("daemon: session otel: pid %d (%s): OTLP: 5 of 5 events exported to %s", p.pid(), e.argv0, col1.URL()))
	d.stderr.waitFor(t, "daemon: reloaded")
	recording, n := fmt.Sprintf("daemon: session otel: recording pid %d", p.pid()), 0
	d.stderr.wait(t, "the restarted session", func(l string) bool {
		if strings.Contains(l, recording) {
			n++
		}
		return n == 2
	})
	p.do(t, "fire 3")
	d.signal(t, syscall.SIGTERM)
	if code := d.wait(t); code != 0 {
		t.Fatalf("daemon exited %d:\n%s", code, d.stderr.text())
	}
	if !strings.Contains(d.stderr.text(), fmt.Sprintf("OTLP: 3 of 3 events exported to %s", col2.URL())) {
		t.Errorf("the daemon's log does not report the second export:\n%s", d.stderr.text())
	}
	for _, c := range []struct {
		col *otlptest.Receiver
		n   int
	}{{col1, 5}, {col2, 3}} {
		logs := c.col.Logs()
		if len(logs) != c.n {
			t.Errorf("collector %s received %d events, want %d", c.col.URL(), len(logs), c.n)
			continue
		}
		for _, l := range logs {
			if l.Name != "test:value" || l.Resource["process.pid"] != int64(p.pid()) || l.Resource["process.executable.name"] != e.argv0 {
				t.Errorf("event %s, resource %v", l.Name, l.Resource)
			}
		}
		for _, h := range c.col.Headers() {
			if h.Get("X-Tenant") != "t1" {
				t.Errorf("request without the session's header: %v", h)
			}
		}
		if v, mono := metricsOf(c.col, p.pid(), metricEvents, "marker", "test:value"); v != int64(c.n) || !mono {
			t.Errorf("collector %s: %s = %d (monotonic: %v), want %d", c.col.URL(), metricEvents, v, mono, c.n)
		}
	}
	// The trace files are written as before.
	if got := countLines(babeltrace(t, filepath.Join(out, "otel")), "test:value:"); got != 8 {
		t.Errorf("the session's traces hold %d events, want 8", got)
	}
}

// A daemon session with "no_output" sends each process's events and
// counts to the collector and writes no file: not even the session's
// directory appears.
func TestDaemonOTLPNoOutput(t *testing.T) {
	t.Parallel()
	e := hostEnv(t)
	col := otlptest.NewReceiver(t)
	out := filepath.Join(e.runtime, "traces")
	conf := filepath.Join(e.runtime, "daemon.json")
	writeConfig(t, conf, out, `{"name": "otel", "match": "`+e.argv0+`", "enable": ["test:value"], "no_output": true, "otlp": {"endpoint": "`+col.URL()+`"}}`)
	d := e.start("cli", "daemon", "--config", conf)
	d.stderr.waitFor(t, "daemon: session otel (record, no_output")
	p := e.startTarget()
	d.stderr.waitFor(t, fmt.Sprintf("daemon: session otel: recording pid %d (%s) to %s (no_output)", p.pid(), e.argv0, col.URL()))
	p.do(t, "fire 7")
	d.signal(t, syscall.SIGTERM)
	if code := d.wait(t); code != 0 {
		t.Fatalf("daemon exited %d:\n%s", code, d.stderr.text())
	}
	if w := fmt.Sprintf("pid %d (%s): OTLP: 7 of 7 events exported to %s", p.pid(), e.argv0, col.URL()); !strings.Contains(d.stderr.text(), w) {
		t.Errorf("the daemon's log lacks %q:\n%s", w, d.stderr.text())
	}
	logs := col.Logs()
	if len(logs) != 7 {
		t.Fatalf("the collector received %d events, want 7", len(logs))
	}
	for _, l := range logs {
		if l.Name != "test:value" || l.Resource["process.pid"] != int64(p.pid()) {
			t.Errorf("event %s, resource %v", l.Name, l.Resource)
		}
	}
	if v, mono := metricsOf(col, p.pid(), metricEvents, "marker", "test:value"); v != 7 || !mono {
		t.Errorf("%s = %d (monotonic: %v), want 7", metricEvents, v, mono)
	}
	if _, err := os.Stat(filepath.Join(out, "otel")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the session wrote %s (%v), want no files", filepath.Join(out, "otel"), err)
	}
}

// stats --all --otlp: each process's counts go out under its own
// resource, pid and program being the resource and the other --by fields
// the points' attributes, with exactly the counts of the table's rows of
// that process.
func TestStatsOTLPHostWide(t *testing.T) {
	t.Parallel()
	e := hostEnv(t)
	col := otlptest.NewReceiver(t)
	p1 := e.startTarget()
	st := e.start("cli", "stats", "--name", e.argv0, "-e", "test:*", "--by", "pid,key", "--otlp", col.URL())
	st.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", p1.pid(), e.argv0))
	p2 := e.startTarget() // after the start
	st.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", p2.pid(), e.argv0))
	p1.do(t, "fire 4")
	p2.do(t, "fire 6")
	p2.do(t, "other 2")
	st.signal(t, os.Interrupt)
	if code := st.wait(t); code != 0 {
		t.Fatalf("stats exited %d:\n%s%s", code, st.stdout.text(), st.stderr.text())
	}
	// The table: COUNT MARKER PID KEY; test:other has no key field, so
	// its row has neither (it is counted under the marker alone).
	table := map[string]int64{} // "pid marker key" -> count
	row := regexp.MustCompile(`(?m)^(\d+)\s+(test:\w+)\s+(\S+)\s+(\S+)\s*$`)
	for _, m := range row.FindAllStringSubmatch(st.stdout.text(), -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		table[m[3]+" "+m[2]+" "+m[4]] = n
	}
	want := map[string]int64{
		fmt.Sprintf("%d test:value a", p1.pid()): 2, fmt.Sprintf("%d test:value b", p1.pid()): 1, fmt.Sprintf("%d test:value c", p1.pid()): 1,
		fmt.Sprintf("%d test:value a", p2.pid()): 2, fmt.Sprintf("%d test:value b", p2.pid()): 2, fmt.Sprintf("%d test:value c", p2.pid()): 2,
		"- test:other -": 2,
	}
	if fmt.Sprint(table) != fmt.Sprint(want) {
		t.Fatalf("table rows %v, want %v:\n%s", table, want, st.stdout.text())
	}
	// The metrics, per resource: the highest value of each point (the
	// sums are cumulative).
	got := map[string]int64{}
	for _, b := range col.Metrics() {
		res := otlptest.MetricsResource(b)
		if res["process.executable.name"] != e.argv0 || res["service.name"] != "unknown_service:"+e.argv0 {
			t.Fatalf("metrics resource %v", res)
		}
		pid, _ := res["process.pid"].(int64)
		for _, p := range otlptest.SumPoints(b, metricEvents) {
			if _, ok := p.Attributes["pid"]; ok {
				t.Errorf("pid %d: a point has attribute pid (the resource says it): %v", pid, p.Attributes)
			}
			key, ok := p.Attributes["key"].(string)
			if !ok {
				key = "-"
			}
			k := fmt.Sprintf("%d %s %s", pid, p.Attributes["marker"], key)
			got[k] = max(got[k], p.Value)
		}
	}
	// The table's test:other row is both processes' (it has no pid); the
	// metrics say whose: p2's.
	delete(want, "- test:other -")
	want[fmt.Sprintf("%d test:other -", p2.pid())] = 2
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s per resource %v, want %v", metricEvents, got, want)
	}
	for _, p := range []int{p1.pid(), p2.pid()} {
		if !strings.Contains(st.stderr.text(), fmt.Sprintf("pid %d (%s): OTLP: counts exported to %s", p, e.argv0, col.URL())) {
			t.Errorf("no export line for pid %d:\n%s", p, st.stderr.text())
		}
		lostPoints := 0
		for _, b := range col.Metrics() {
			if otlptest.MetricsResource(b)["process.pid"] != int64(p) {
				continue
			}
			for _, pt := range otlptest.SumPoints(b, metricLost) {
				lostPoints++
				if pt.Value != 0 {
					t.Errorf("pid %d: %s = %d, want 0", p, metricLost, pt.Value)
				}
			}
		}
		if lostPoints == 0 {
			t.Errorf("pid %d: no %s point", p, metricLost)
		}
	}
}

// Every exporting command says, as it happens, that the collector refuses
// events; host-wide recording and the daemon name the process.
func TestOTLPRejectionWarned(t *testing.T) {
	t.Parallel()
	refusing := func(t *testing.T) *otlptest.Receiver {
		col := otlptest.NewReceiver(t)
		col.Answer(func(path string, _ int) (int, map[string]string, []byte) {
			if path == "/v1/logs" {
				return 401, nil, []byte("no token")
			}
			return 0, nil, nil
		})
		return col
	}
	warning := func(col *otlptest.Receiver, prefix string) string {
		return prefix + "warning: OTLP: the collector refuses events, which are lost, not retried: otlp: " + col.URL() + "/v1/logs answered 401 Unauthorized: no token"
	}
	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		col := refusing(t)
		e := newEnv(t)
		target := e.startTarget()
		p := e.start("cli", "stream", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--otlp", col.URL())
		p.stderr.waitFor(t, "Streaming 1 marker ")
		failsRefused(t, p, target, warning(col, ""))
	})
	t.Run("record host-wide", func(t *testing.T) {
		t.Parallel()
		col := refusing(t)
		e := hostEnv(t)
		target := e.startTarget()
		rec := e.start("cli", "record", "--name", e.argv0, "-e", "test:*", "-o", filepath.Join(e.runtime, "host"), "--otlp", col.URL())
		rec.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", target.pid(), e.argv0))
		failsRefused(t, rec, target, warning(col, fmt.Sprintf("pid %d (%s): ", target.pid(), e.argv0)))
	})
	t.Run("daemon", func(t *testing.T) {
		t.Parallel()
		col := refusing(t)
		e := hostEnv(t)
		out := filepath.Join(e.runtime, "traces")
		conf := filepath.Join(e.runtime, "daemon.json")
		writeConfig(t, conf, out, `{"name": "otel", "match": "`+e.argv0+`", "enable": ["test:value"], "otlp": {"endpoint": "`+col.URL()+`"}}`)
		d := e.start("cli", "daemon", "--config", conf)
		d.stderr.waitFor(t, "daemon: session otel (record")
		target := e.startTarget()
		d.stderr.waitFor(t, fmt.Sprintf("daemon: session otel: recording pid %d", target.pid()))
		target.do(t, "fire 3")
		d.stderr.waitFor(t, warning(col, fmt.Sprintf("daemon: session otel: pid %d (%s): ", target.pid(), e.argv0)))
		d.signal(t, syscall.SIGTERM)
		d.wait(t)
	})
}

// failsRefused has target fire, waits for p to warn that the collector
// refuses the events, stops p and expects it to fail.
func failsRefused(t *testing.T, p, target *proc, warn string) {
	t.Helper()
	target.do(t, "fire 3")
	p.stderr.waitFor(t, warn)
	p.signal(t, os.Interrupt)
	if code := p.wait(t); code == 0 {
		t.Errorf("%v exited 0 after the collector refused its events:\n%s", p.cmd.Args, p.stderr.text())
	}
}

// record --otlp --no-output host-wide: every process's events go to the
// collector, under its own resource, a process attached later too, and
// no trace directory is written.
func TestOTLPHostWideNoOutput(t *testing.T) {
	t.Parallel()
	e := hostEnv(t)
	col := otlptest.NewReceiver(t)
	p1 := e.startTarget()
	rec := e.start("cli", "record", "--name", e.argv0, "-e", "test:*", "--no-output", "--otlp", col.URL())
	rec.stderr.waitFor(t, "for the collector only (--no-output)")
	rec.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", p1.pid(), e.argv0))
	p2 := e.startTarget()
	rec.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", p2.pid(), e.argv0))
	p1.do(t, "fire 4")
	p2.do(t, "fire 6")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s%s", code, rec.stdout.text(), rec.stderr.text())
	}
	perPID := map[int64]int{}
	for _, l := range col.Logs() {
		pid, _ := l.Resource["process.pid"].(int64)
		perPID[pid]++
	}
	if want := map[int64]int{int64(p1.pid()): 4, int64(p2.pid()): 6}; fmt.Sprint(perPID) != fmt.Sprint(want) {
		t.Errorf("events per resource pid %v, want %v", perPID, want)
	}
	out := rec.stdout.text()
	for _, want := range []string{"Recorded 10 events from 2 processes", "Traces: none (--no-output)",
		fmt.Sprintf("pid %d (%s): OTLP: 6 of 6 events exported to %s", p2.pid(), e.argv0, col.URL())} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if traces, err := filepath.Glob(filepath.Join(e.runtime, "tracemark-*")); err != nil || len(traces) != 0 {
		t.Errorf("trace directories written: %v %v", traces, err)
	}
}
