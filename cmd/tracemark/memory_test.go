package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/internal/wire"
)

// TestMemoryBudget runs a target whose recording memory budget is 1 MiB
// (TRACEMARK_MEMORY) with two Ps: a session that does not fit, named or
// recorded, is refused with the budget, the request and the sessions in
// use in the message, and tracemark sessions shows each session's memory
// and the budget.
func TestMemoryBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.environ = append(e.environ, "TRACEMARK_MEMORY=1M", "GOMAXPROCS=2")
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	r := e.cli("enable", "-p", pid, "-s", "blackbox", "-e", "test:value", "--mode", "overwrite", "--buffer", "256K")
	if r.code != 0 || !strings.Contains(r.stdout, "session blackbox: overwrite mode, 256.0 KiB buffer x2 (512.0 KiB), started") {
		t.Fatalf("enable: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	refusal := []string{"recording memory budget 1 MiB exceeded", "(2 shards of 512 KiB) needs 1 MiB, 512 KiB free",
		`in use: session "blackbox" 512 KiB`, "TRACEMARK_MEMORY"}
	r = e.cli("enable", "-p", pid, "-s", "big", "-e", "test:value", "--buffer", "512K")
	if r.code != exitError {
		t.Errorf("enable over the budget: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range append(refusal, `session "big"`) {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("enable over the budget: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	t.Logf("enable over the budget:\n%s", r.stderr)
	r = e.cli("record", "-p", pid, "-e", "test:value", "--buffer", "512K", "-o", e.runtime+"/trace")
	if r.code != exitError {
		t.Errorf("record over the budget: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range refusal {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("record over the budget: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	r = e.cli("sessions", "-p", pid)
	if r.code != 0 || !regexp.MustCompile(`(?m)^blackbox\s+overwrite\s+started\s+256.0 KiB x2\s+512.0 KiB\s+0\s+0\s+test:value$`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "recording memory: 512.0 KiB in use of a 1.0 MiB budget") {
		t.Errorf("sessions: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("sessions:\n%s", r.stdout)
	r = e.cli("sessions", "-p", pid, "--json")
	var list []wire.SessionInfo
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0].Memory != 512<<10 {
		t.Errorf("sessions --json: %v\n%s", err, r.stdout)
	}
	if r = e.cli("disable", "-p", pid, "-s", "blackbox"); r.code != 0 {
		t.Fatalf("disable: exit %d\n%s", r.code, r.stderr)
	}
	r = e.cli("sessions", "-p", pid)
	if !strings.Contains(r.stdout, "recording memory: 0 B in use of a 1.0 MiB budget") {
		t.Errorf("sessions after disable:\n%s%s", r.stdout, r.stderr)
	}
}

// TestSessionsShowUnsharded checks that tracemark sessions says when a
// session lost events on Ps it had no buffer for.
func TestSessionsShowUnsharded(t *testing.T) {
	var out strings.Builder
	a := &app{stdout: &out, stderr: &out}
	list := []wire.SessionInfo{
		{Name: "ok", Mode: "discard", State: "started", Buffer: 1 << 20, Streams: 2, Memory: 2 << 20, Rules: []wire.RuleInfo{}},
		{Name: "grown", Mode: "discard", State: "started", Buffer: 1 << 20, Streams: 2, Memory: 2 << 20, Rules: []wire.RuleInfo{},
			Stats: wire.Stats{Discarded: 9, Unsharded: 7}},
	}
	printSessions(a, list)
	if !strings.Contains(out.String(), "grown: 7 events lost on CPUs added since the session started") ||
		strings.Contains(out.String(), "ok: ") {
		t.Fatalf("output:\n%s", out.String())
	}
}
