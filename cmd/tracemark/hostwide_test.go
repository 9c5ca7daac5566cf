package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tracemark/tracemark/ctf"
)

// hostEnv is an env whose targets have a program name of their own, so
// that --name selects them and no process of another test on the host.
func hostEnv(t *testing.T) *env {
	e := newEnv(t)
	e.argv0 = "tmhw" + filepath.Base(e.runtime)[3:]
	return e
}

// btTime matches the time and process of a Babeltrace 2 event line.
var btLine = regexp.MustCompile(`^\[(\d\d):(\d\d):(\d\d)\.(\d{9})\] .*:\((\d+)\) (test:\w+):`)

// btEvents parses babeltrace2 lines into (ns of day, vpid, event name).
func btEvents(t *testing.T, ls []string) (ts []int64, pids []int, names []string) {
	t.Helper()
	for _, l := range ls {
		m := btLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected babeltrace2 line: %s", l)
		}
		h, _ := strconv.ParseInt(m[1], 10, 64)
		mi, _ := strconv.ParseInt(m[2], 10, 64)
		s, _ := strconv.ParseInt(m[3], 10, 64)
		ns, _ := strconv.ParseInt(m[4], 10, 64)
		pid, _ := strconv.Atoi(m[5])
		ts = append(ts, ((h*60+mi)*60+s)*1e9+ns)
		pids = append(pids, pid)
		names = append(names, m[6])
	}
	return ts, pids, names
}

// TestRecordHostWide: three processes, one that exits during the
// recording and one that starts after it began, recorded by name into one
// directory that Babeltrace 2 reads as one timeline in time order.
func TestRecordHostWide(t *testing.T) {
	t.Parallel()
	e := hostEnv(t)
	p1 := e.startTarget()
	p2 := e.startTarget()
	dir := filepath.Join(e.runtime, "host")
	rec := e.start("cli", "record", "--name", e.argv0, "-e", "test:*", "-o", dir, "--context", "pid,procname,cpu")
	rec.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", p1.pid(), e.argv0))
	rec.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", p2.pid(), e.argv0))
	p1.do(t, "fire 10")
	p2.do(t, "fire 20")
	// p2 exits: its agent ends the recording; its trace is complete.
	p2.stdin.Close()
	if code := p2.wait(t); code != 0 {
		t.Fatalf("target exited %d", code)
	}
	rec.stderr.waitFor(t, fmt.Sprintf("pid %d (%s) ended (shutdown): its trace holds 20 events", p2.pid(), e.argv0))
	// p3 starts after the recording began and is attached.
	p3 := e.startTarget()
	rec.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", p3.pid(), e.argv0))
	p3.do(t, "fire 30")
	p1.do(t, "other 5")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	out := rec.stdout.text()
	if !strings.Contains(out, "Recorded 65 events from 3 processes") {
		t.Errorf("summary:\n%s", out)
	}
	for _, p := range []struct {
		pid    int
		events int
		end    string
	}{{p1.pid(), 15, "stopped"}, {p2.pid(), 20, "shutdown"}, {p3.pid(), 30, "stopped"}} {
		re := fmt.Sprintf(`(?m)^\s+%d\s+%s\s+%d\s+0\s+%s\s`, p.pid, e.argv0, p.events, p.end)
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no summary row %s:\n%s", re, out)
		}
	}
	// One trace per process, named PROGRAM-PID-START.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 3 {
		t.Fatalf("%s holds %d entries, want 3 traces", dir, len(ents))
	}
	for _, ent := range ents {
		if !regexp.MustCompile(`^` + e.argv0 + `-\d+-\d{8}-\d{6}$`).MatchString(ent.Name()) {
			t.Errorf("trace directory %q is not named PROGRAM-PID-START", ent.Name())
		}
	}

	// Babeltrace 2 merges them: the events in the order they were fired,
	// process by process, with non-decreasing times.
	bt := babeltrace(t, dir)
	ts, pids, names := btEvents(t, bt)
	// Every event carries its context, that of its own process.
	ctxRE := regexp.MustCompile(`:\((\d+)\) test:\w+: \{ cpu_id = (\d+) \}, \{ pid = (\d+), procname = "([^"]*)", cpu = (\d+) \}, \{`)
	for _, l := range bt {
		m := ctxRE.FindStringSubmatch(l)
		if m == nil || m[1] != m[3] || m[4] != e.argv0 || m[2] != m[5] {
			t.Fatalf("event without its context (pid, procname, cpu as its packet's):\n%s", l)
		}
	}
	want := []struct {
		pid  int
		name string
		n    int
	}{{p1.pid(), "test:value", 10}, {p2.pid(), "test:value", 20}, {p3.pid(), "test:value", 30}, {p1.pid(), "test:other", 5}}
	i := 0
	for _, w := range want {
		for range w.n {
			if i >= len(pids) {
				t.Fatalf("babeltrace2 shows %d events, want 65", len(pids))
			}
			if pids[i] != w.pid || names[i] != w.name {
				t.Fatalf("event %d is %s of pid %d, want %s of pid %d: not merged in time order", i, names[i], pids[i], w.name, w.pid)
			}
			i++
		}
	}
	if i != len(pids) {
		t.Errorf("babeltrace2 shows %d events, want %d", len(pids), i)
	}
	for i := 1; i < len(ts); i++ {
		if ts[i] < ts[i-1] {
			t.Errorf("event %d is earlier than event %d", i, i-1)
		}
	}

	// tracemark reads the directory the same way: a summary row per
	// process, and a merged conversion naming each event's process.
	sum := e.cli("summary", dir)
	for _, p := range []struct{ pid, events int }{{p1.pid(), 15}, {p2.pid(), 20}, {p3.pid(), 30}} {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+%s\s+%d\s`, p.pid, e.argv0, p.events)).MatchString(sum.stdout) {
			t.Errorf("summary has no row for pid %d with %d events:\n%s%s", p.pid, p.events, sum.stdout, sum.stderr)
		}
	}
	conv := e.cli("convert", dir, "--to", "text")
	var convPids []string
	for l := range strings.SplitSeq(strings.TrimSpace(conv.stdout), "\n") {
		if m := regexp.MustCompile(`:\((\d+)\) (?:\[[^]]*\] )?test:`).FindStringSubmatch(l); m != nil {
			convPids = append(convPids, m[1])
		}
	}
	wantPids := strings.Repeat(strconv.Itoa(p1.pid())+" ", 10) + strings.Repeat(strconv.Itoa(p2.pid())+" ", 20) +
		strings.Repeat(strconv.Itoa(p3.pid())+" ", 30) + strings.Repeat(strconv.Itoa(p1.pid())+" ", 5)
	if strings.Join(convPids, " ")+" " != wantPids {
		t.Errorf("convert --to text of the directory is not merged in time order by process:\n%s%s", conv.stdout, conv.stderr)
	}

	// convert --to perfetto writes one trace, a process each (package
	// perfetto reads such a trace with trace_processor).
	pf := filepath.Join(e.runtime, "host.pftrace")
	if c := e.cli("convert", dir, "--to", "perfetto", "-o", pf); c.code != 0 {
		t.Errorf("convert --to perfetto of the directory exited %d: %s", c.code, c.stderr)
	} else if b, _ := os.ReadFile(pf); !bytes.Contains(b, []byte(e.argv0)) {
		t.Errorf("the Perfetto trace of the directory does not name the processes")
	}

	// stats counts the directory as one, a row per process and marker by
	// default, and by program across processes.
	st := e.cli("stats", dir)
	for _, p := range []struct {
		pid    int
		marker string
		n      int
	}{{p1.pid(), "test:value", 10}, {p1.pid(), "test:other", 5}, {p2.pid(), "test:value", 20}, {p3.pid(), "test:value", 30}} {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+%s\s+%d$`, p.n, p.marker, p.pid)).MatchString(st.stdout) {
			t.Errorf("stats of the directory has no row %s pid %d: %d:\n%s%s", p.marker, p.pid, p.n, st.stdout, st.stderr)
		}
	}
	st = e.cli("stats", dir, "-e", "test:value", "--by", "program")
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^60\s+test:value\s+%s$`, e.argv0)).MatchString(st.stdout) {
		t.Errorf("stats --by program of the directory, want 60 test:value:\n%s%s", st.stdout, st.stderr)
	}
}

// startInNamespaces starts a target in new mount and PID namespaces, with
// its socket directory on a tmpfs that only its mount namespace sees, as a
// container would. It skips the test where the kernel (or a missing
// unshare) refuses.
func (e *env) startInNamespaces(t *testing.T) *proc {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("SKIP: no unshare(1) (util-linux): cannot test other namespaces")
	}
	if out, err := exec.Command(unshare, "--mount", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("SKIP: this kernel or user may not create mount and PID namespaces (unshare: %v: %s)", err, bytes.TrimSpace(out))
	}
	script := `mount -t tmpfs -o mode=0700 tmpfs "$TMNS_DIR" && exec -a "$TMNS_NAME" "$TMNS_EXE"`
	cmd := exec.Command(unshare, "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "bash", "-c", script)
	cmd.Env = append(e.environ, roleEnv+"=target", "TMNS_DIR="+e.runtime, "TMNS_NAME="+e.argv0+"ns", "TMNS_EXE="+e.exe)
	p := e.startCmd(cmd)
	p.stdout.waitFor(t, "ready ")
	return p
}

// TestNamespaces: a process in other mount and PID namespaces, whose
// socket the host does not see at its path, is found by ps --all through
// /proc/PID/root with both pids, and recorded by name.
func TestNamespaces(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root to create namespaces and reach their processes")
	}
	e := hostEnv(t)
	p := e.startInNamespaces(t)
	name := e.argv0 + "ns"
	// The socket is invisible from here: only through the process's root.
	if _, err := os.Stat(e.socketDir()); err == nil {
		if ents, _ := os.ReadDir(e.socketDir()); len(ents) > 0 {
			t.Fatalf("the namespaced socket is visible on the host: the test does not test namespaces")
		}
	}
	r := e.cli("ps", "--all", "--json")
	var procs []psAllJSON
	if err := json.Unmarshal([]byte(r.stdout), &procs); err != nil {
		t.Fatalf("ps --all --json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	var found *psAllJSON
	for i := range procs {
		if procs[i].Info != nil && procs[i].Info.Program == name {
			found = &procs[i]
		}
	}
	if found == nil {
		t.Fatalf("ps --all does not show %s:\n%s", name, r.stdout)
	}
	if found.PID != 1 || found.HostPID == 1 || !strings.HasPrefix(found.Socket, fmt.Sprintf("/proc/%d/root/", found.HostPID)) {
		t.Errorf("ps --all: host pid %d, pid %d, socket %s; want the pid 1 of the namespace, reached through /proc/HOSTPID/root", found.HostPID, found.PID, found.Socket)
	}
	table := e.cli("ps", "--all")
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+1\s+%s\s`, found.HostPID, name)).MatchString(table.stdout) {
		t.Errorf("ps --all table lacks the HOST-PID PID PROGRAM row:\n%s", table.stdout)
	}

	dir := filepath.Join(e.runtime, "ns-trace") // on the host: the tmpfs is only in there
	rec := e.start("cli", "record", "--name", name, "-e", "test:*", "-o", dir, "--context", "tid,vtid")
	rec.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", found.HostPID, name))
	p.do(t, "threads 3 4 keep") // threads that live on: this test can map them
	p.do(t, "fire 7")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	bt := babeltrace(t, dir)
	var fired []string
	for _, l := range bt {
		if !strings.Contains(l, `key = "thread"`) {
			fired = append(fired, l)
		}
	}
	_, pids, _ := btEvents(t, fired)
	if len(pids) != 7 || pids[0] != 1 {
		t.Errorf("babeltrace2 shows %d events (vpid %v), want 7 of vpid 1", len(pids), pids)
	}
	// The thread ids: vtid is the one the process sees, tid the host's,
	// the same thread (/proc/TID/status lists both).
	threadRe := regexp.MustCompile(`\{ tid = (\d+), vtid = (\d+) \}, \{ i = (\d+), key = "thread"`)
	threads := map[string]bool{}
	for _, l := range bt {
		m := threadRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if m[2] != m[3] {
			t.Fatalf("event fired on thread %s of the namespace has vtid %s", m[3], m[2])
		}
		st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(found.HostPID), "task", m[1], "status"))
		if err != nil {
			t.Fatalf("tid %s of vtid %s is no thread of host pid %d: %v", m[1], m[2], found.HostPID, err)
		}
		if host, inner, ok := parseNSpid(st); !ok || strconv.Itoa(int(host)) != m[1] || strconv.Itoa(int(inner)) != m[2] || m[1] == m[2] {
			t.Fatalf("tid %s, vtid %s: the thread's NSpid says %d %d", m[1], m[2], host, inner)
		}
		threads[m[1]] = true
	}
	if len(threads) != 3 {
		t.Errorf("babeltrace2 shows the events of %d threads, want 3:\n%s", len(threads), strings.Join(bt, "\n"))
	}
	md, err := filepath.Glob(filepath.Join(dir, "*", "metadata"))
	if err != nil || len(md) != 1 {
		t.Fatalf("want one trace in %s: %v %v", dir, md, err)
	}
	b, _ := os.ReadFile(md[0])
	if !strings.Contains(string(b), fmt.Sprintf("host_pid = %d;", found.HostPID)) {
		t.Errorf("the trace environment does not give the host pid %d", found.HostPID)
	}
}

// writeConfig writes a daemon configuration file.
func writeConfig(t *testing.T, path, dir string, sessions ...string) {
	t.Helper()
	s := `{"dir": "` + dir + `", "sessions": [` + strings.Join(sessions, ",") + `]}`
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDaemon: standing sessions apply to processes started after the
// daemon, record into rotating chunks that Babeltrace reads one by one,
// survive the processes, follow the configuration on SIGHUP and
// snapshot flight recorders on SIGUSR1.
func TestDaemon(t *testing.T) {
	t.Parallel()
	e := hostEnv(t)
	out := filepath.Join(e.runtime, "traces")
	conf := filepath.Join(e.runtime, "daemon.json")
	rec := `{"name": "rec", "match": "` + e.argv0 + `", "enable": ["test:value"], "rotate_size": "100", "context": ["tid"]}`
	fl := `{"name": "fl", "mode": "flight", "match": "` + e.argv0 + `", "enable": ["test:value"], "context": ["vtid"]}`
	writeConfig(t, conf, out, rec, fl)
	d := e.start("cli", "daemon", "--config", conf)
	d.stderr.waitFor(t, "daemon: session fl (flight")

	// A process that starts after the daemon gets both sessions.
	p1 := e.startTarget()
	d.stderr.waitFor(t, fmt.Sprintf("daemon: session rec: recording pid %d", p1.pid()))
	d.stderr.waitFor(t, fmt.Sprintf("daemon: session fl: flight recorder in pid %d", p1.pid()))
	p1.do(t, "fire 10")
	// The next stats frame (each second) finds the chunk full.
	d.stderr.waitFor(t, fmt.Sprintf("daemon: session rec: pid %d: new chunk", p1.pid()))
	p1.do(t, "fire 20")

	// SIGHUP with a broken file: the running configuration stays.
	if err := os.WriteFile(conf, []byte(`{"dir": `), 0o644); err != nil {
		t.Fatal(err)
	}
	d.signal(t, syscall.SIGHUP)
	d.stderr.waitFor(t, "keeping the running configuration")

	// SIGHUP: a new session applies to the running process at once.
	late := `{"name": "late", "match": "` + e.argv0 + `", "enable": ["test:other"]}`
	writeConfig(t, conf, out, rec, fl, late)
	d.signal(t, syscall.SIGHUP)
	d.stderr.waitFor(t, "reloaded")
	d.stderr.waitFor(t, fmt.Sprintf("daemon: session late: recording pid %d", p1.pid()))
	p1.do(t, "other 3")

	// SIGUSR1 snapshots the flight recorders.
	d.signal(t, sigUsr1(t))
	snapLine := d.stderr.waitFor(t, fmt.Sprintf("daemon: session fl: snapshot of pid %d in ", p1.pid()))
	snap := snapLine[strings.LastIndex(snapLine, " in ")+4:]

	// The process's threads, which fired its events (Go keeps them).
	threads := map[string]bool{}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p1.pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		threads[ent.Name()] = true
	}

	// The process exits; the daemon goes on and takes the next one.
	p1.stdin.Close()
	p1.wait(t)
	d.stderr.waitFor(t, fmt.Sprintf("daemon: session rec: pid %d (%s) ended (shutdown): 30 events", p1.pid(), e.argv0))
	d.stderr.waitFor(t, fmt.Sprintf("daemon: session late: pid %d (%s) ended (shutdown): 3 events", p1.pid(), e.argv0))
	p2 := e.startTarget()
	d.stderr.waitFor(t, fmt.Sprintf("daemon: session late: recording pid %d", p2.pid()))
	d.stderr.waitFor(t, fmt.Sprintf("daemon: session rec: recording pid %d", p2.pid()))

	// sessions --all shows what applies where.
	r := e.cli("sessions", "--all")
	for _, s := range []string{"rec", "late"} {
		re := fmt.Sprintf(`(?m)^%d\s+%s\s+\S+\s+tracemark daemon: %s\s`, p2.pid(), e.argv0, s)
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("sessions --all lacks %s:\n%s%s", re, r.stdout, r.stderr)
		}
	}
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+%s\s+fl\s+enable\s+overwrite\s`, p2.pid(), e.argv0)).MatchString(r.stdout) {
		t.Errorf("sessions --all lacks the flight session:\n%s", r.stdout)
	}

	d.signal(t, syscall.SIGTERM)
	if code := d.wait(t); code != 0 {
		t.Fatalf("daemon exited %d:\n%s", code, d.stderr.text())
	}

	// Every chunk is a complete trace; together they hold the 30 events.
	chunks, _ := filepath.Glob(filepath.Join(out, "rec", fmt.Sprintf("%s-%d-*", e.argv0, p1.pid()), "0*"))
	if len(chunks) < 2 {
		t.Fatalf("rec holds %d chunks for pid %d, want at least 2 (rotation):\n%s", len(chunks), p1.pid(), d.stderr.text())
	}
	total := 0
	tidRe := regexp.MustCompile(`\{ tid = (\d+) \}, \{ i = `)
	for _, c := range chunks {
		n := 0
		for _, l := range babeltrace(t, c) {
			if strings.Contains(l, "test:value:") {
				n++
				// The rule's context: the thread of each event.
				if m := tidRe.FindStringSubmatch(l); m == nil || !threads[m[1]] {
					t.Errorf("chunk %s: event without the tid of a thread of pid %d (%v): %s", c, p1.pid(), threads, l)
				}
			}
		}
		if c == chunks[0] && n != 10 {
			t.Errorf("first chunk %s holds %d events, want the first 10", c, n)
		}
		total += n
	}
	if total != 30 {
		t.Errorf("the chunks hold %d events, want 30", total)
	}
	lateTrace, _ := filepath.Glob(filepath.Join(out, "late", fmt.Sprintf("%s-%d-*", e.argv0, p1.pid()), "0*"))
	if len(lateTrace) != 1 || countLines(babeltrace(t, lateTrace[0]), "test:other:") != 3 {
		t.Errorf("the session added on SIGHUP did not record the 3 events: %v", lateTrace)
	}
	snapLines := babeltrace(t, snap)
	if n := countLines(snapLines, "test:value:"); n != 30 {
		t.Errorf("the flight snapshot holds %d events, want 30", n)
	}
	vtidRe := regexp.MustCompile(`\{ vtid = (\d+) \}, \{ i = `)
	for _, l := range snapLines {
		if m := vtidRe.FindStringSubmatch(l); strings.Contains(l, "test:value:") && (m == nil || !threads[m[1]]) {
			t.Errorf("flight snapshot: event without the vtid of a thread of pid %d: %s", p1.pid(), l)
		}
	}
}

// TestStreamAndStatsHostWide: stream and stats take many processes, one
// attached after the start, and name the process of each event.
func TestStreamAndStatsHostWide(t *testing.T) {
	t.Parallel()
	e := hostEnv(t)
	p1 := e.startTarget()
	st := e.start("cli", "stats", "--name", e.argv0, "-e", "test:value", "--json")
	sm := e.start("cli", "stream", "--name", e.argv0, "-e", "test:value")
	js := e.start("cli", "stream", "--name", e.argv0, "-e", "test:value", "--json")
	for _, c := range []*proc{st, sm, js} {
		c.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", p1.pid(), e.argv0))
	}
	p2 := e.startTarget()
	for _, c := range []*proc{st, sm, js} {
		c.stderr.waitFor(t, fmt.Sprintf("Attached to pid %d (%s)", p2.pid(), e.argv0))
	}
	p1.do(t, "fire 4")
	p2.do(t, "fire 6")
	sm.stdout.waitFor(t, fmt.Sprintf(" %d %s test:value: i=5 ", p2.pid(), e.argv0))
	js.stdout.waitFor(t, fmt.Sprintf(`"pid":%d,"procname":%q`, p2.pid(), e.argv0))
	for _, c := range []*proc{st, sm, js} {
		c.signal(t, os.Interrupt)
		if code := c.wait(t); code != 0 {
			t.Fatalf("%v exited %d:\n%s", c.cmd.Args, code, c.stderr.text())
		}
	}
	lines := sm.stdout.text()
	if n, m := strings.Count(lines, fmt.Sprintf(" %d %s test:value:", p1.pid(), e.argv0)), strings.Count(lines, fmt.Sprintf(" %d %s test:value:", p2.pid(), e.argv0)); n != 4 || m != 6 {
		t.Errorf("stream shows %d and %d events of the two processes, want 4 and 6:\n%s", n, m, lines)
	}
	// stream --json: the jsonl schema, the process in its keys.
	perPID := map[int]int{}
	for _, l := range strings.Split(strings.TrimSpace(js.stdout.text()), "\n") {
		var ev struct {
			Event    string `json:"event"`
			PID      int    `json:"pid"`
			Procname string `json:"procname"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Event != "test:value" || ev.Procname != e.argv0 {
			t.Fatalf("stream --all --json line %q: %+v, %v; want a test:value event of %s", l, ev, err, e.argv0)
		}
		perPID[ev.PID]++
	}
	if perPID[p1.pid()] != 4 || perPID[p2.pid()] != 6 || len(perPID) != 2 {
		t.Errorf("stream --json events per pid: %v, want 4 of %d and 6 of %d", perPID, p1.pid(), p2.pid())
	}
	var res struct {
		Events uint64 `json:"events"`
		By     string `json:"by"`
		Counts []struct {
			Marker, Value string
			Count         uint64
		} `json:"counts"`
	}
	if err := json.Unmarshal([]byte(st.stdout.text()), &res); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, st.stdout.text())
	}
	got := map[string]uint64{}
	for _, c := range res.Counts {
		got[c.Value] = c.Count
	}
	if res.Events != 10 || res.By != "pid" || got[strconv.Itoa(p1.pid())] != 4 || got[strconv.Itoa(p2.pid())] != 6 {
		t.Errorf("stats --all: %+v, want 4 and 6 events by pid", res)
	}
}

// TestRecordContext: --context works for one process too, and refuses
// what cannot be had.
func TestRecordContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir, "--context", "procname", "--context", "pid")
	target.do(t, "fire 3")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	bt := babeltrace(t, dir)
	want := fmt.Sprintf(`{ procname = "tm-target", pid = %d }, { i = 2, key = "c"`, target.pid())
	if countLines(bt, "test:value:") != 3 || countLines(bt, want) != 1 {
		t.Errorf("babeltrace2 does not show the context %s:\n%s", want, strings.Join(bt, "\n"))
	}
	conv := e.cli("convert", dir, "--to", "jsonl")
	wantCtx := fmt.Sprintf(`"context":{"procname":"tm-target","pid":%d}`, target.pid())
	if conv.code != 0 || strings.Count(conv.stdout, wantCtx) != 3 {
		t.Errorf("convert of a trace with context: exit %d\n%s%s", conv.code, conv.stdout, conv.stderr)
	}
	for _, bad := range []string{"pid,pid", "weather", "tid,tid"} {
		if r := e.cli("record", "-p", strconv.Itoa(target.pid()), "-e", "test:*", "--context", bad); r.code != exitUsage {
			t.Errorf("--context %s: exit %d, want a usage error\n%s", bad, r.code, r.stderr)
		}
	}
}

// TestRecordContextThreadID: --context pid,procname,cpu,tid,vtid records,
// in every event, the target's pid and program name, the stream (the
// shard, the Go P) that holds it and the thread that fired it. The
// target's goroutines, each locked to a thread of its own, fire events
// whose field i is their gettid, in two rounds whose threads differ (a
// goroutine that exits locked ends its thread): every event's context
// must say so, in our reader and in Babeltrace's.
func TestRecordContextThreadID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir, "--context", "pid,procname,cpu,tid,vtid")
	target.do(t, "threads 4 50")
	target.do(t, "threads 2 30")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tids := map[int64]int{}
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Class == nil {
			continue
		}
		var names []string
		for _, f := range ev.ContextFields {
			names = append(names, f.Name)
		}
		if strings.Join(names, ",") != "pid,procname,cpu,tid,vtid" {
			t.Fatalf("stream event context %v, want pid, procname, cpu, tid, vtid", names)
		}
		field := ev.Fields[0].Int
		pid, procname, cpu := ev.Context[0].Int, string(ev.Context[1].Bytes), ev.Context[2].Uint
		if tid, vtid := int64(ev.Context[3].Uint), int64(ev.Context[4].Uint); tid != field || vtid != field || pid != int64(target.pid()) ||
			procname != "tm-target" || cpu != uint64(ev.Stream) {
			t.Fatalf("event fired on thread %d in stream %d: context pid %d, procname %q, cpu %d, tid %d, vtid %d",
				field, ev.Stream, pid, procname, cpu, tid, vtid)
		}
		tids[field]++
	}
	if len(tids) != 6 {
		t.Fatalf("events of %d threads, want 6 (4 then 2 new ones): %v", len(tids), tids)
	}
	bt := babeltrace(t, dir)
	ctxRe := regexp.MustCompile(`\{ cpu_id = (\d+) \}, \{ pid = (\d+), procname = "tm-target", cpu = (\d+), tid = (\d+), vtid = (\d+) \}, \{ i = (\d+), key = "thread"`)
	n := 0
	for _, l := range bt {
		m := ctxRe.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("babeltrace2 line without the context: %q", l)
		}
		if m[4] != m[6] || m[5] != m[6] || m[2] != strconv.Itoa(target.pid()) || m[3] != m[1] {
			t.Fatalf("babeltrace2: event of thread %s in the packet of cpu_id %s has tid %s, vtid %s, pid %s, cpu %s", m[6], m[1], m[4], m[5], m[2], m[3])
		}
		n++
	}
	if n != 4*50+2*30 {
		t.Fatalf("babeltrace2 shows %d events, want %d", n, 4*50+2*30)
	}
}
