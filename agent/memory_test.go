package agent_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/agent"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/session"
)

// memoryBudget returns the option setting the process's recording memory
// budget to n bytes, and restores the budget after the test.
func memoryBudget(t *testing.T, n int64) agent.Option {
	t.Helper()
	prev, _ := session.MemoryBudget()
	t.Cleanup(func() { session.SetMemoryBudget(prev) })
	return agent.WithMemoryBudget(n)
}

// wantRefusal checks that err is a limit_exceeded error whose message
// contains every part of want.
func wantRefusal(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if !wire.IsCode(err, wire.CodeLimit) {
		t.Fatalf("%s: %v, want limit_exceeded", what, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q lacks %q", what, err, w)
		}
	}
}

// TestMemoryBudget checks that named sessions, recordings and snapshots
// share the process's recording memory budget: a request that does not
// fit is refused with an error naming the budget, the request and what
// holds the memory, the session list shows the memory of each session,
// and memory returns to the budget when sessions end.
func TestMemoryBudget(t *testing.T) {
	prev := runtime.GOMAXPROCS(2) // two shards per session
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	if _, used := session.MemoryBudget(); used != 0 {
		t.Fatalf("%d bytes in use before the test", used)
	}
	_, c := startAgent(t, memoryBudget(t, 320<<10))
	bb, err := c.Enable(ctx(t), "blackbox", wire.EnableRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Mode: "overwrite", Buffer: "64K"})
	if err != nil {
		t.Fatal(err)
	}
	if bb.Memory != 128<<10 || bb.Streams != 2 {
		t.Fatalf("blackbox holds %d bytes in %d streams, want 128 KiB in 2", bb.Memory, bb.Streams)
	}
	_, err = c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Buffer: "128K"})
	wantRefusal(t, "recording", err, "recording memory budget 320 KiB exceeded", "(2 shards of 128 KiB) needs 256 KiB, 192 KiB free",
		`in use: session "blackbox" 128 KiB`)
	_, err = c.Enable(ctx(t), "big", wire.EnableRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Buffer: "128K"})
	wantRefusal(t, "named session", err, `session "big" (2 shards of 128 KiB) needs 256 KiB`, `session "blackbox" 128 KiB`)

	rec, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Buffer: "64K", Client: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	if _, err := c.Enable(ctx(t), "small", wire.EnableRequest{Rules: []wire.Rule{{Pattern: "agenttest:other"}}, Buffer: "16K"}); err != nil {
		t.Fatal(err)
	}
	list, err := c.SessionList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	mem := map[string]int64{}
	for _, s := range list.Sessions {
		mem[s.Name] = s.Memory
	}
	if list.MemoryBudget != 320<<10 || list.MemoryInUse != 288<<10 || mem["blackbox"] != 128<<10 ||
		mem[rec.Hello.Session] != 128<<10 || mem["small"] != 32<<10 {
		t.Fatalf("budget %d, in use %d, per session %v", list.MemoryBudget, list.MemoryInUse, mem)
	}

	// 32 KiB are left: a snapshot's copy of one 64 KiB shard does not fit.
	fireTicks(100)
	s, err := c.Snapshot(ctx(t), "blackbox")
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, s)
	s.Close()
	if got.end == nil || got.end.Error == nil || got.end.Error.Code != wire.CodeLimit ||
		!strings.Contains(got.end.Error.Message, `a snapshot of session "blackbox" needs 64 KiB, 32 KiB free`) {
		t.Fatalf("snapshot end = %+v %+v", got.end, got.end.Error)
	}

	// Ending the recording and destroying a session give their memory back.
	if err := c.Stop(ctx(t), rec.Hello.Recording); err != nil {
		t.Fatal(err)
	}
	collect(t, rec)
	if err := c.Destroy(ctx(t), "small"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the recording's memory to return", func() bool {
		_, used := session.MemoryBudget()
		return used == 128<<10
	})
	s, err = c.Snapshot(ctx(t), "blackbox")
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, s); got.end == nil || got.end.Error != nil || len(got.records) != 100 {
		t.Fatalf("snapshot with room: %d records, end %+v", len(got.records), got.end)
	}
}
