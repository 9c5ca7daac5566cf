package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	xtrace "golang.org/x/exp/trace"

	"github.com/tracemark/tracemark/internal/wire"
)

func TestPsAndList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())

	infos := e.ps()
	if len(infos) != 1 || infos[0].PID != target.pid() || infos[0].Program != "tm-target" || infos[0].Markers < 2 {
		t.Errorf("ps --json = %+v", infos)
	}
	r := e.cli("ps")
	if r.code != 0 || !regexp.MustCompile(`(?m)^`+pid+`\s+tm-target\s+\S+\s+\d+\s+0\s+0\s+0\s`).MatchString(r.stdout) {
		t.Errorf("ps: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// By pid and by program name, with a glob.
	for _, p := range []string{pid, "tm-target"} {
		r = e.cli("list", "-p", p, "test:*")
		if r.code != 0 || !regexp.MustCompile(`(?m)^test:value\s+stable\s+off\s+i:int64 key:string lat:duration$`).MatchString(r.stdout) ||
			!strings.Contains(r.stdout, "test:other") || strings.Contains(r.stdout, "http:") {
			t.Errorf("list -p %s test:*: exit %d\n%s%s", p, r.code, r.stdout, r.stderr)
		}
	}
	r = e.cli("list", "-p", pid, "test:value", "-l")
	for _, want := range []string{"format:      i=%d key=%s lat=%v", "doc:         fired by the test target on request", "helpers_test.go:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list -l lacks %q:\n%s", want, r.stdout)
		}
	}
	r = e.cli("list", "-p", pid, "--json")
	var ms []wire.Marker
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ms) != nil {
		t.Fatalf("list --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	i := slices.IndexFunc(ms, func(m wire.Marker) bool { return m.Name == "test:value" })
	if i < 0 || len(ms[i].Fields) != 3 || ms[i].Fields[2] != (wire.Field{Name: "lat", Kind: "duration"}) {
		t.Errorf("list --json: %+v", ms)
	}
}

func TestPsIgnoresDeadProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := os.Mkdir(e.socketDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	// A socket left behind by a process that died (its pid is free now).
	dead := e.start("cli", "--help")
	dead.wait(t)
	leaveSocket(t, filepath.Join(e.socketDir(), wire.SocketName(dead.pid())))
	if infos := e.ps(); len(infos) != 0 {
		t.Errorf("ps --json lists the stale socket: %+v", infos)
	}
	// ps removes it: a program that exits without closing its agent (one
	// started by agent/autostart) leaves it behind.
	if _, err := os.Lstat(filepath.Join(e.socketDir(), wire.SocketName(dead.pid()))); !os.IsNotExist(err) {
		t.Errorf("stale socket still there after ps: %v", err)
	}
	// So does the next agent to start.
	leaveSocket(t, filepath.Join(e.socketDir(), wire.SocketName(dead.pid())))
	e.startTarget()
	if _, err := os.Lstat(filepath.Join(e.socketDir(), wire.SocketName(dead.pid()))); !os.IsNotExist(err) {
		t.Errorf("stale socket still there: %v", err)
	}
}

// record starts "tracemark record" on target and waits until it records.
func (e *env) record(t *testing.T, target *proc, dir string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"record", "-p", strconv.Itoa(target.pid()), "-e", "test:*", "-o", dir}, extra...)
	p := e.start("cli", args...)
	p.stderr.waitFor(t, "Recording 2 markers of pid "+strconv.Itoa(target.pid()))
	return p
}

// recordNoOutput starts "tracemark record --no-output" on target (give
// --otlp in extra) and waits until it records.
func (e *env) recordNoOutput(t *testing.T, target *proc, extra ...string) *proc {
	t.Helper()
	args := append([]string{"record", "-p", strconv.Itoa(target.pid()), "-e", "test:*", "--no-output"}, extra...)
	p := e.start("cli", args...)
	p.stderr.waitFor(t, "Recording 2 markers of pid "+strconv.Itoa(target.pid())+" (")
	return p
}

func TestRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir)
	target.do(t, "fire 100")
	target.do(t, "other 2")
	rec.signal(t, os.Interrupt) // Ctrl-C: a clean stop
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	out := rec.stdout.text()
	for _, re := range []string{`Recorded 102 events .* \(stopped\)`, `(?m)^\s+test:value\s+100\s+0\s+0$`, `(?m)^\s+test:other\s+2\s+0\s+0$`, `Lost events: none`, `babeltrace2 ` + regexp.QuoteMeta(dir)} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("summary does not match %s:\n%s", re, out)
		}
	}
	bt := babeltrace(t, dir)
	if n := countLines(bt, "test:value:"); n != 100 {
		t.Errorf("babeltrace2 shows %d test:value events, want 100", n)
	}
	if n := countLines(bt, "test:other:"); n != 2 {
		t.Errorf("babeltrace2 shows %d test:other events, want 2", n)
	}
	// Every field arrives intact: the 100th event is i=99, key "a"
	// (99 % 3 == 0), lat 8µs (99 % 4 == 3).
	if countLines(bt, `{ i = 99, key = "a", lat = 8000 }`) != 1 {
		t.Errorf("event i=99 missing or wrong:\n%s", strings.Join(bt[max(0, len(bt)-3):], "\n"))
	}
	if countLines(bt, fmt.Sprintf("tm-target:(%d)", target.pid())) != 102 {
		t.Errorf("events do not name the process (procname and vpid in the trace environment):\n%s", bt[0])
	}
}

// The trace is written behind the capture, but readable while it runs:
// the events of a stats interval are on disk once the interval is shown,
// a few events (far less than the megabyte that wakes the writer) too.
func TestRecordTraceReadableLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir, "--progress", "plain", "--interval", "100ms")
	target.do(t, "fire 5")
	rec.stderr.waitFor(t, " 5 events ")
	deadline := time.Now().Add(time.Minute)
	for n := uint64(0); n != 5; {
		if time.Now().After(deadline) {
			t.Fatalf("the trace holds %d events while recording, want the 5 fired", n)
		}
		n, _ = liveTotals(t, dir)
		runtime.Gosched()
	}
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
}

func TestRecordDuration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	r := e.cli("record", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "-o", dir, "--duration", "200ms", "--progress", "none")
	if r.code != 0 || !strings.Contains(r.stdout, "(--duration elapsed)") {
		t.Fatalf("record --duration: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	babeltrace(t, dir) // an empty trace is still a valid one
}

// TestRecordRefusesUnfitOutput: -o must name a new or empty directory. A
// directory holding other files would give a trace that neither
// Babeltrace nor tracemark can read, so record refuses it up front (exit
// 2) and writes nothing into it.
func TestRecordRefusesUnfitOutput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	notes := filepath.Join(e.runtime, "notes")
	if err := os.MkdirAll(notes, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notes, "notes.txt"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(e.runtime, "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{notes, "is not empty (it holds notes.txt) and is not a trace"},
		{file, "is a file, not a directory"},
	} {
		r := e.cli("record", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "-o", c.dir, "--duration", "200ms", "--progress", "none")
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("record -o %s: exit %d, want 2 with %q\n%s%s", c.dir, r.code, c.want, r.stdout, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(notes); len(ents) != 1 {
		t.Errorf("record wrote into the refused directory: %d entries", len(ents))
	}
	// An empty directory is fine.
	empty := filepath.Join(e.runtime, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := e.cli("record", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "-o", empty, "--duration", "200ms", "--progress", "none"); r.code != 0 {
		t.Fatalf("record -o into an empty directory: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	babeltrace(t, empty)
}

// TestRecordCtrlCOnAStoppedTarget: Ctrl-C while the traced process is
// stopped (SIGSTOP) says what it waits for; when the agent does not answer
// within --timeout, record gives up with a clear message, and a second
// Ctrl-C gives up at once. Either way the trace holds what was received.
func TestRecordCtrlCOnAStoppedTarget(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		timeout string
		second  bool // a second Ctrl-C instead of waiting for --timeout
		want    string
	}{
		{"timeout", "1s", false, "did not stop the recording (no answer in 1s: is it stopped (SIGSTOP, a debugger) or wedged?)"},
		{"second Ctrl-C", "1h", true, "interrupted: closing without waiting for the last events"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			target := e.startTarget()
			dir := filepath.Join(e.runtime, "trace")
			rec := e.record(t, target, dir, "--progress", "plain", "--interval", "20ms", "--timeout", c.timeout)
			target.do(t, "fire 100")
			rec.stderr.waitFor(t, " 100 events ")
			target.signal(t, sigStop(t))
			defer target.signal(t, sigCont(t))
			waitStopped(t, target.pid()) // kill(2) returns before the process stops
			rec.signal(t, os.Interrupt)
			rec.stderr.waitFor(t, "waiting for pid "+strconv.Itoa(target.pid())+" to send its last events (Ctrl-C again to give up now)")
			if c.second {
				rec.signal(t, os.Interrupt)
			}
			rec.stderr.waitFor(t, c.want)
			rec.wait(t)
			if strings.Contains(rec.stderr.text(), "no tracemark agent") {
				t.Errorf("misleading message:\n%s", rec.stderr.text())
			}
			bt := babeltrace(t, dir)
			if n := countLines(bt, "test:value"); n != 100 {
				t.Errorf("babeltrace2 shows %d test:value events, want the 100 received", n)
			}
		})
	}
}

// waitStopped waits until process pid is in the stopped state ('T' in
// /proc/PID/stat): a stop signal takes effect after kill(2) returns.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The state follows the command name, which is in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop: %s", pid, b)
		}
		runtime.Gosched()
	}
}

// TestRecordTargetKilled kills the traced process with SIGKILL during a
// recording: the CLI must say so, exit 3, and leave a valid trace of what
// it received.
func TestRecordTargetKilled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir, "--progress", "plain", "--interval", "20ms")
	target.do(t, "fire 100")
	// The progress line counts the events written to the trace.
	rec.stderr.waitFor(t, " 100 events ")
	target.signal(t, syscall.SIGKILL)
	if code := rec.wait(t); code != exitTargetDied {
		t.Fatalf("record exited %d, want %d:\n%s", code, exitTargetDied, rec.stderr.text())
	}
	if msg := rec.stderr.text(); !strings.Contains(msg, fmt.Sprintf("process %d died during the recording", target.pid())) ||
		!strings.Contains(msg, dir) {
		t.Errorf("stderr does not say the process died and where the trace is:\n%s", msg)
	}
	if n := countLines(babeltrace(t, dir), "test:value:"); n != 100 {
		t.Errorf("babeltrace2 shows %d events, want the 100 received before the kill", n)
	}
}

func TestTwoRecorders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dirs := []string{filepath.Join(e.runtime, "t1"), filepath.Join(e.runtime, "t2")}
	recs := []*proc{e.record(t, target, dirs[0]), e.record(t, target, dirs[1])}
	// Both sessions are listed, as ephemeral.
	r := e.cli("sessions", "-p", strconv.Itoa(target.pid()), "--json")
	var list []wire.SessionInfo
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 || !list[0].Ephemeral || list[1].Client != "tracemark record" {
		t.Errorf("sessions during two recordings: %v %+v", err, list)
	}
	target.do(t, "fire 50")
	for _, rec := range recs {
		rec.signal(t, os.Interrupt)
	}
	for i, rec := range recs {
		if code := rec.wait(t); code != 0 {
			t.Fatalf("recorder %d exited %d:\n%s", i, code, rec.stderr.text())
		}
		if n := countLines(babeltrace(t, dirs[i]), "test:value:"); n != 50 {
			t.Errorf("trace %d has %d events, want 50", i, n)
		}
	}
}

func TestStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	p := e.start("cli", "stream", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--filter", `key == "b"`)
	p.stderr.waitFor(t, "Streaming 1 marker of")
	target.do(t, "fire 9")
	p.stdout.waitFor(t, "i=7 ")
	p.signal(t, os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("stream exited %d:\n%s", code, p.stderr.text())
	}
	line := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6} test:value: i=(\d) key="b" lat=(\S+)$`)
	var got []string
	for _, l := range strings.Split(p.stdout.text(), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected line %q", l)
		}
		got = append(got, m[1]+" "+m[2])
	}
	if want := []string{"1 2µs", "4 1µs", "7 8µs"}; !slices.Equal(got, want) {
		t.Errorf("stream printed %q, want %q", got, want)
	}
	if !strings.Contains(p.stderr.text(), "3 events, 0 lost") {
		t.Errorf("no final count:\n%s", p.stderr.text())
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	const n = 60
	p := e.start("cli", "stats", "-p", strconv.Itoa(target.pid()), "-e", "test:*", "--by", "key", "--hist", "lat", "--json")
	p.stderr.waitFor(t, "Counting 2 markers")
	target.do(t, fmt.Sprintf("fire %d", n))
	target.do(t, "other 4")
	p.signal(t, os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("stats exited %d:\n%s", code, p.stderr.text())
	}
	var got statsResult
	if err := json.Unmarshal([]byte(p.stdout.text()), &got); err != nil {
		t.Fatalf("%v:\n%s", err, p.stdout.text())
	}
	// What the target fired, computed independently.
	counts := map[string]uint64{}
	buckets := map[string]map[int64]uint64{}
	for i := range n {
		key, lat := valueOf(i)
		counts[key]++
		if buckets[key] == nil {
			buckets[key] = map[int64]uint64{}
		}
		low := int64(1)
		for low*2 <= int64(lat) {
			low *= 2
		}
		buckets[key][low]++
	}
	if got.Events != n+4 || got.Lost != 0 || len(got.Counts) != 4 {
		t.Fatalf("stats = %+v", got)
	}
	for _, c := range got.Counts {
		want := counts[c.Value]
		if c.Marker == "test:other" {
			want = 4 // no "key" field: counted per marker
		}
		if c.Count != want {
			t.Errorf("count %s %q = %d, want %d", c.Marker, c.Value, c.Count, want)
		}
	}
	for _, h := range got.Histograms {
		for _, b := range h.Buckets {
			if b.Low == nil || b.Count != buckets[h.Value][*b.Low] || b.High != 2**b.Low {
				t.Errorf("histogram %q bucket %+v, want count %d", h.Value, b, buckets[h.Value][*b.Low])
			}
			delete(buckets[h.Value], *b.Low)
		}
	}
	for key, rest := range buckets {
		if len(rest) > 0 {
			t.Errorf("histogram of %q lacks buckets %v", key, rest)
		}
	}

	// The text table says the same.
	p = e.start("cli", "stats", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--by", "key")
	p.stderr.waitFor(t, "Counting 1 marker of")
	target.do(t, "fire 30")
	p.signal(t, os.Interrupt)
	p.wait(t)
	if !regexp.MustCompile(`(?m)^10\s+test:value\s+a$`).MatchString(p.stdout.text()) {
		t.Errorf("stats table:\n%s", p.stdout.text())
	}
}

func TestNamedSessionSnapshot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	r := e.cli("enable", "-p", pid, "-s", "flight", "-e", "test:value", "--mode", "overwrite", "--buffer", "16K")
	if r.code != 0 || !strings.Contains(r.stdout, "session flight: overwrite mode") {
		t.Fatalf("enable: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// More events than 16 KiB per CPU hold: the oldest are overwritten.
	target.do(t, "fire 5000")
	r = e.cli("sessions", "-p", pid)
	if r.code != 0 || !regexp.MustCompile(`(?m)^flight\s+overwrite\s+started\s+16.0 KiB x\d+\s+\S+ [KM]iB\s+5000\s+[1-9]\d*\s+test:value$`).MatchString(r.stdout) {
		t.Errorf("sessions: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dir := filepath.Join(e.runtime, "snap")
	r = e.cli("snapshot", "-p", pid, "-o", dir) // the only session: no -s needed
	if r.code != 0 {
		t.Fatalf("snapshot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bt := babeltrace(t, dir)
	n := countLines(bt, "test:value:")
	if n == 0 || n >= 5000 || countLines(bt, "{ i = 4999,") != 1 {
		t.Errorf("snapshot holds %d events (the newest included: %v); want the newest, not all",
			n, countLines(bt, "{ i = 4999,") == 1)
	}
	r = e.cli("disable", "-p", pid, "-s", "flight")
	if r.code != 0 || !strings.Contains(r.stdout, "session flight destroyed") {
		t.Fatalf("disable: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.cli("sessions", "-p", pid, "--json")
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("sessions after disable: %s", r.stdout)
	}
	r = e.cli("disable", "-p", pid, "-s", "flight")
	if r.code != exitError || !strings.Contains(r.stderr, `no session "flight"`) {
		t.Errorf("disabling a missing session: exit %d\n%s", r.code, r.stderr)
	}
}

// TestOtherUserRefused runs tracemark as user nobody against a process
// of root whose socket was opened up on purpose: the agent's peer
// credential check alone must refuse it.
func TestOtherUserRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run tracemark as another user")
	}
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	sock := filepath.Join(e.socketDir(), wire.SocketName(target.pid()))
	for _, p := range []string{e.runtime, e.socketDir()} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	// nobody cannot reach the test binary where go test built it.
	exe := filepath.Join(e.runtime, "tracemark.test")
	exposeBinary(t, os.Args[0], exe)
	nobody := nobodyAttr(t)
	asNobody := *e
	asNobody.exe = exe
	p := asNobody.startWith("cli", nobody, "list", "--socket", sock)
	code := p.wait(t)
	if code != exitError || !strings.Contains(p.stderr.text(), "only serves uid 0 and root") {
		t.Errorf("tracemark as nobody: exit %d\n%s%s", code, p.stdout.text(), p.stderr.text())
	}
	if infos := e.ps(); len(infos) != 1 || infos[0].RefusedPeers != 1 {
		t.Errorf("ps after the refusal: %+v", infos)
	}
}

// exposeBinary makes the executable src runnable as dst. A hard link is
// best: copying leaves a file open for writing, which a child forked
// meanwhile by a parallel test inherits until its exec, and executing dst
// then fails with "text file busy" (go.dev/issue/22315). Copying is the
// fallback across file systems.
func exposeBinary(t *testing.T, src, dst string) {
	t.Helper()
	if os.Link(src, dst) == nil {
		return
	}
	self, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, self, 0o755); err != nil {
		t.Fatal(err)
	}
}

// ps runs "tracemark ps --json" and returns the processes of this test's
// runtime directory: the user's other directory (/tmp/tracemark-UID) may
// hold agents of processes that have nothing to do with the test.
func (e *env) ps() []wire.Info {
	e.t.Helper()
	r := e.cli("ps", "--json")
	var all, mine []wire.Info
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &all) != nil {
		e.t.Fatalf("ps --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, i := range all {
		if strings.HasPrefix(i.Socket, e.runtime+"/") {
			mine = append(mine, i)
		}
	}
	return mine
}

// TestSnapshotTrigger: a named overwrite session snapshots itself when a
// marker fires, rate-limited, and the snapshot is a trace Babeltrace reads.
func TestSnapshotTrigger(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	dir := filepath.Join(e.runtime, "incidents")
	r := e.cli("enable", "-p", pid, "-s", "blackbox", "-e", "test:value", "--mode", "overwrite",
		"--snapshot-on", "test:other", "--snapshot-dir", dir, "--snapshot-every", "1h")
	if r.code != 0 || !strings.Contains(r.stdout, "blackbox: snapshot on test:other, at most every 1h0m0s") {
		t.Fatalf("enable: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	target.do(t, "fire 5")
	target.do(t, "other 3") // three firings within the hour: one snapshot
	var info []wire.SessionInfo
	deadline := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no triggered snapshot after 30s: %+v", info[0].Trigger)
		}
		r = e.cli("sessions", "-p", pid, "--json")
		info = nil
		if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || len(info) != 1 || info[0].Trigger == nil {
			t.Fatalf("sessions --json: %v\n%s%s", err, r.stdout, r.stderr)
		}
		if info[0].Trigger.Taken > 0 {
			break
		}
	}
	tr := info[0].Trigger
	if tr.Fired != 3 || tr.Taken != 1 || tr.Suppressed != 2 || tr.LastError != "" || !strings.HasPrefix(tr.LastSnapshot, dir) {
		t.Errorf("trigger %+v", tr)
	}
	bt := babeltrace(t, tr.LastSnapshot)
	if n := countLines(bt, "test:value:"); n != 5 || countLines(bt, "{ i = 4,") != 1 {
		t.Errorf("triggered snapshot holds %d test:value events, want the 5 fired before", n)
	}
	r = e.cli("enable", "-p", pid, "-s", "blackbox", "-e", "test:value", "--snapshot-on", "test:*")
	if r.code == 0 || !strings.Contains(r.stderr, "already snapshots on") {
		t.Errorf("second trigger: exit %d\n%s", r.code, r.stderr)
	}
	r = e.cli("enable", "-p", pid, "-s", "other", "-e", "test:value", "--snapshot-on", "[")
	if r.code != exitUsage {
		t.Errorf("bad trigger glob: exit %d\n%s", r.code, r.stderr)
	}
	if r = e.cli("disable", "-p", pid, "-s", "blackbox"); r.code != 0 {
		t.Errorf("disable: exit %d\n%s", r.code, r.stderr)
	}
}

// TestRecordGoTrace records with --go-trace: beside the CTF trace, the Go
// execution trace of the same window, in which the recorded markers'
// events are log events (go tool trace reads it), and the CTF directory
// stays one that Babeltrace reads.
func TestRecordGoTrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir, "--go-trace")
	target.do(t, "fire 5")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	if n := countLines(babeltrace(t, dir), "test:value:"); n != 5 {
		t.Errorf("babeltrace2 shows %d test:value events, want 5", n)
	}
	out, err := exec.Command(goCommand(t), "tool", "trace", "-d=parsed", dir+".go.trace").CombinedOutput()
	if err != nil {
		t.Fatalf("go tool trace: %v\n%s", err, out[:min(len(out), 2000)])
	}
	var logs []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " Log ") && strings.Contains(l, `Category="test:value"`) {
			logs = append(logs, l[strings.Index(l, "Message="):])
		}
	}
	if len(logs) != 5 || logs[4] != `Message="i=4 key=b lat=1µs"` {
		t.Errorf("test:value log events in the Go trace: %q, want 5 ending with i=4", logs)
	}
	// The reader of golang.org/x/exp/trace agrees, and puts them on a
	// goroutine.
	f, err := os.Open(dir + ".go.trace")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := xtrace.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for {
		ev, err := tr.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind() == xtrace.EventLog && ev.Log().Category == "test:value" {
			if ev.Goroutine() == xtrace.NoGoroutine {
				t.Errorf("log event %q on no goroutine", ev.Log().Message)
			}
			msgs = append(msgs, ev.Log().Message)
		}
	}
	if len(msgs) != 5 || msgs[0] != "i=0 key=a lat=1µs" {
		t.Errorf("x/exp/trace reads %q, want 5 test:value logs from i=0", msgs)
	}
	// A second Go trace of the same process is refused while one runs.
	rec = e.record(t, target, filepath.Join(e.runtime, "trace2"), "--go-trace")
	r := e.cli("record", "-p", strconv.Itoa(target.pid()), "-e", "test:*", "-o", filepath.Join(e.runtime, "trace3"), "--go-trace", "--duration", "1s")
	if r.code == 0 || !strings.Contains(r.stderr, "Go's execution trace") {
		t.Errorf("second --go-trace recording: exit %d, %s", r.code, r.stderr)
	}
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
}

// TestSnapshotTriggerGoTrace: with --snapshot-go-trace, a triggered
// snapshot has Go's flight recorder window beside it, holding the
// session's events as log events.
func TestSnapshotTriggerGoTrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	dir := filepath.Join(e.runtime, "incidents")
	r := e.cli("enable", "-p", pid, "-s", "blackbox", "-e", "test:value", "--mode", "overwrite",
		"--snapshot-on", "test:other", "--snapshot-dir", dir, "--snapshot-every", "1h", "--snapshot-go-trace")
	if r.code != 0 {
		t.Fatalf("enable: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Go runs one flight recorder a process.
	r = e.cli("enable", "-p", pid, "-s", "second", "-e", "test:value",
		"--snapshot-on", "test:other", "--snapshot-dir", dir, "--snapshot-go-trace")
	if r.code == 0 || !strings.Contains(r.stderr, "flight recorder") {
		t.Errorf("second Go flight recorder: exit %d\n%s", r.code, r.stderr)
	}
	target.do(t, "fire 5")
	target.do(t, "other 1")
	var info []wire.SessionInfo
	deadline := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no triggered snapshot after 30s: %+v", info[0].Trigger)
		}
		r = e.cli("sessions", "-p", pid, "--json")
		info = nil
		if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || len(info) != 1 || info[0].Trigger == nil {
			t.Fatalf("sessions --json: %v\n%s%s", err, r.stdout, r.stderr)
		}
		if info[0].Trigger.Taken > 0 || info[0].Trigger.LastError != "" {
			break
		}
	}
	tr := info[0].Trigger
	if !tr.GoTrace || tr.LastError != "" {
		t.Fatalf("trigger %+v", tr)
	}
	out, err := exec.Command(goCommand(t), "tool", "trace", "-d=parsed", tr.LastSnapshot+".go.trace").CombinedOutput()
	if err != nil {
		t.Fatalf("go tool trace: %v\n%s", err, out[:min(len(out), 2000)])
	}
	if n := strings.Count(string(out), `Category="test:value"`); n != 5 {
		t.Errorf("Go's flight recorder window holds %d test:value log events, want 5", n)
	}
	if n := countLines(babeltrace(t, tr.LastSnapshot), "test:value:"); n != 5 {
		t.Errorf("the CTF snapshot holds %d test:value events, want 5", n)
	}
	if r = e.cli("disable", "-p", pid, "-s", "blackbox"); r.code != 0 {
		t.Errorf("disable: exit %d\n%s", r.code, r.stderr)
	}
	// The flight recorder stopped with the session: another may start.
	r = e.cli("enable", "-p", pid, "-s", "third", "-e", "test:value",
		"--snapshot-on", "test:other", "--snapshot-dir", dir, "--snapshot-go-trace")
	if r.code != 0 {
		t.Errorf("Go flight recorder after disable: exit %d\n%s", r.code, r.stderr)
	}
}

// goCommand returns the go command (go test puts its GOROOT/bin first in
// PATH), or skips.
func goCommand(t *testing.T) string {
	t.Helper()
	g, err := exec.LookPath("go")
	if err != nil {
		t.Skip("SKIP: no go command to run go tool trace")
	}
	return g
}
