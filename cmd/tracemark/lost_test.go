package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
)

// btDiscarded matches Babeltrace 2's warning for a discarded events
// message, which its default sink prints on stderr.
var btDiscarded = regexp.MustCompile(`WARNING: Tracer discarded (\d+) events? `)

// babeltraceTotals reads a trace with Babeltrace 2 and returns how many
// events it prints and the sum of the discarded events it reports.
func babeltraceTotals(t *testing.T, dir string) (events, discarded uint64) {
	t.Helper()
	bt, err := exec.LookPath("babeltrace2")
	if err != nil {
		t.Skip("babeltrace2 is not installed (Debian package babeltrace2): cannot check the trace with the reference reader")
	}
	cmd := exec.Command(bt, dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("babeltrace2 %s: %v\n%s", dir, err, stderr.String())
	}
	events = uint64(strings.Count(string(out), "\n"))
	for _, m := range btDiscarded.FindAllStringSubmatch(stderr.String(), -1) {
		n, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		discarded += n
	}
	return events, discarded
}

// lossyEvents is how many events the loss tests fire into a 16 KiB
// buffer while the recorder is stopped (fireWhileStopped): what the
// target's socket and buffer hold is at most 8 MiB and 16 KiB per CPU,
// and 600,000 test:value events take more than 10.8 MB (18 bytes of
// fields each, and a header), so that many of them are lost however the
// processes are scheduled. (Not many more: the agent gives up a write
// blocked for 10 s, and the recorder is stopped while they fire.)
const lossyEvents = 600_000

// fireWhileStopped fires n test:value events in target while rec, the
// recorder, is stopped (SIGSTOP), then lets rec go on. Nothing drains the
// target's socket meanwhile: once the socket (whose send buffer the agent
// asks to be 4 MiB, which the kernel doubles at most) and the session's
// buffer are full, every event is lost.
func fireWhileStopped(t *testing.T, rec, target *proc, n int) {
	t.Helper()
	rec.signal(t, sigStop(t))
	waitStopped(t, rec.pid())
	start := time.Now()
	target.do(t, fmt.Sprintf("fire %d", n))
	rec.signal(t, sigCont(t))
	t.Logf("the recorder was stopped for %v", time.Since(start))
}

// TestRecordCountsEveryLostEvent records into the smallest buffer while
// the target fires much more than it holds with the recorder stopped:
// events are lost, and the summary and the trace (as Babeltrace reads
// it) must both account for every event fired.
func TestRecordCountsEveryLostEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir, "--buffer", "16K", "--progress", "none")
	fireWhileStopped(t, rec, target, lossyEvents)
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	out := rec.stdout.text()
	got, lost := summaryCounts(t, out)
	if got+lost != lossyEvents || lost == 0 {
		t.Errorf("summary: %d events + %d lost, want %d fired and some lost:\n%s", got, lost, lossyEvents, out)
	}
	// The summary says which knobs would help, with numbers.
	for _, re := range []string{`events/s sustained, \d+\.\d\d % lost`, `fired [\d.]+[kM]? events/s`,
		`The buffer, 16\.0 KiB per CPU in sub-buffers of 4\.0 KiB, holds [\d.]+ ms`, `--buffer 128K \(holds [\d.]+ ms\)`,
		`--subbuf 16K`, `--filter`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("summary does not match %s:\n%s", re, out)
		}
	}
	// tracemark summary reads the trace with package ctf.
	r := e.cli("summary", dir)
	sm := regexp.MustCompile(`(?m)^events\s+(\d+)\nlost\s+(\d+) events`).FindStringSubmatch(r.stdout)
	if r.code != 0 || sm == nil || sm[1] != strconv.FormatUint(got, 10) || sm[2] != strconv.FormatUint(lost, 10) {
		t.Errorf("tracemark summary: exit %d, want %d events and %d lost:\n%s%s", r.code, got, lost, r.stdout, r.stderr)
	}
	events, discarded := babeltraceTotals(t, dir)
	t.Logf("summary: %d events, %d lost; babeltrace: %d events, %d discarded", got, lost, events, discarded)
	if events+discarded != lossyEvents {
		t.Errorf("babeltrace: %d events + %d discarded = %d, fired %d (summary: %d + %d)",
			events, discarded, events+discarded, lossyEvents, got, lost)
	}
}

// summaryCounts reads the events recorded and lost from record's
// summary, out.
func summaryCounts(t *testing.T, out string) (recorded, lost uint64) {
	t.Helper()
	m := regexp.MustCompile(`Recorded (\d+) events[^\n]*\n(?s:.*)Lost events: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("summary has no event and lost counts:\n%s", out)
	}
	recorded, _ = strconv.ParseUint(m[1], 10, 64)
	lost, _ = strconv.ParseUint(m[2], 10, 64)
	return recorded, lost
}

// progressLine matches the counts of a progress line.
var progressLine = regexp.MustCompile(`\s(\d+) events\s.*\slost (\d+)`)

// TestRecordKilledKeepsLostCount kills tracemark itself with SIGKILL once
// its progress line has accounted for every event fired and its trace,
// written behind the capture, has too: the trace it leaves must count
// the lost events it had received.
func TestRecordKilledKeepsLostCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir, "--buffer", "16K", "--progress", "plain", "--interval", "20ms")
	fireWhileStopped(t, rec, target, lossyEvents)
	rec.stderr.wait(t, "a progress line accounting for every event", func(l string) bool {
		m := progressLine.FindStringSubmatch(l)
		if m == nil {
			return false
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		lost, _ := strconv.ParseUint(m[2], 10, 64)
		return n+lost == lossyEvents
	})
	for deadline := time.Now().Add(time.Minute); ; runtime.Gosched() {
		events, discarded := liveTotals(t, dir)
		if events+discarded == lossyEvents {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trace holds %d events + %d discarded while recording, want the %d fired", events, discarded, lossyEvents)
		}
	}
	rec.signal(t, syscall.SIGKILL)
	rec.wait(t)
	events, discarded := babeltraceTotals(t, dir)
	if events+discarded != lossyEvents {
		t.Errorf("babeltrace: %d events + %d discarded = %d, fired %d", events, discarded, events+discarded, lossyEvents)
	}
	if discarded == 0 {
		t.Error("babeltrace: nothing discarded, though the target fired with the recorder stopped")
	}
}

// liveTotals reads a trace being written with package ctf: its events and
// the events its packets say were discarded, or zeros if it is not
// readable yet. A reader racing the writer can see a packet published
// over pages appended after it measured the file (an error here, not in
// the file): the callers read again.
func liveTotals(t *testing.T, dir string) (events, discarded uint64) {
	t.Helper()
	r, err := ctf.Open(dir)
	if err != nil {
		return 0, 0 // not yet created
	}
	defer r.Close()
	for e, err := range r.Events() {
		if err != nil {
			t.Logf("reading the trace while it is written: %v; again", err)
			return 0, 0
		}
		if e.Class != nil {
			events++
		}
		discarded += e.Discarded
	}
	return events, discarded
}
