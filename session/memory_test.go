package session_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

// withBudget sets the recording memory budget for the test.
func withBudget(t *testing.T, n int64) {
	t.Helper()
	prev := session.SetMemoryBudget(n)
	t.Cleanup(func() { session.SetMemoryBudget(prev) })
}

// withProcs sets GOMAXPROCS for the test.
func withProcs(t *testing.T, n int) {
	t.Helper()
	prev := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}

// TestSessionShardsFollowGOMAXPROCS checks that a session has one shard
// per GOMAXPROCS, whatever the number of CPUs, and holds that many times
// its buffer size.
func TestSessionShardsFollowGOMAXPROCS(t *testing.T) {
	for _, procs := range []int{1, 3} {
		withProcs(t, procs)
		s := newSession(t, session.WithBufferSize(64<<10))
		if s.Streams() != procs || s.Memory() != int64(procs)*64<<10 {
			t.Errorf("GOMAXPROCS=%d: %d streams, %d bytes", procs, s.Streams(), s.Memory())
		}
	}
}

// TestMemoryBudgetRefuses checks that a session that does not fit in the
// budget is refused with an error naming the budget, the request and the
// sessions holding memory, and fits once one of them is destroyed.
func TestMemoryBudgetRefuses(t *testing.T) {
	withProcs(t, 2)
	_, base := session.MemoryBudget()
	withBudget(t, base+3<<20)
	a := newNamedSession(t, "blackbox", session.WithBufferSize(1<<20)) // 2 MiB
	if _, used := session.MemoryBudget(); used != base+2<<20 || a.Memory() != 2<<20 {
		t.Fatalf("in use %d, session %d, want 2 MiB more than %d", used, a.Memory(), base)
	}
	_, err := session.New("big", session.WithBufferSize(1<<20))
	if !errors.Is(err, session.ErrMemoryBudget) {
		t.Fatalf("New: %v, want ErrMemoryBudget", err)
	}
	for _, want := range []string{"recording memory budget", "exceeded", `session "big" (2 shards of 1 MiB) needs 2 MiB`, `session "blackbox" 2 MiB`, "TRACEMARK_MEMORY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, used := session.MemoryBudget(); used != base+2<<20 {
		t.Fatalf("a refused session holds memory: in use %d", used)
	}
	a.Destroy()
	if _, used := session.MemoryBudget(); used != base || a.Memory() != 0 {
		t.Fatalf("after Destroy: in use %d, session %d", used, a.Memory())
	}
	if err := a.Drain(func(session.Packet) error { return nil }); !errors.Is(err, session.ErrState) {
		t.Fatalf("Drain after Destroy: %v, want ErrState", err)
	}
	a.Destroy() // again: releases nothing twice
	if _, used := session.MemoryBudget(); used != base {
		t.Fatalf("after a second Destroy: in use %d", used)
	}
	newNamedSession(t, "big", session.WithBufferSize(1<<20))
}

// TestMemoryBudgetSnapshot checks that a snapshot's copy is charged while
// it runs, and that a snapshot that does not fit is refused.
func TestMemoryBudgetSnapshot(t *testing.T) {
	withProcs(t, 2)
	_, base := session.MemoryBudget()
	withBudget(t, base+2<<20)
	s := newNamedSession(t, "flight", session.WithMode(session.Overwrite), session.WithBufferSize(1<<20))
	err := s.Snapshot(func(session.Packet) error { return nil })
	if !errors.Is(err, session.ErrMemoryBudget) || !strings.Contains(err.Error(), `a snapshot of session "flight" needs 1 MiB`) {
		t.Fatalf("Snapshot: %v, want a refusal naming the snapshot", err)
	}
	if err := session.WriteSnapshot(s, t.TempDir()+"/snap"); !errors.Is(err, session.ErrMemoryBudget) {
		t.Fatalf("WriteSnapshot: %v, want ErrMemoryBudget", err)
	}
	session.SetMemoryBudget(base + 3<<20)
	mustEnable(t, s, "stest_http:request_done", "")
	s.Start()
	reqDone.Fire("GET", 200, "/", 0)
	var during int64
	if err := s.Snapshot(func(session.Packet) error { during = s.Memory(); return nil }); err != nil {
		t.Fatal(err)
	}
	if during != 3<<20 || s.Memory() != 2<<20 {
		t.Fatalf("session holds %d during the snapshot, %d after; want 3 MiB, 2 MiB", during, s.Memory())
	}
}

// TestMemoryBudgetEnv checks TRACEMARK_MEMORY, and that a malformed value
// makes New fail with an error naming the variable.
func TestMemoryBudgetEnv(t *testing.T) {
	prev := session.SetMemoryBudget(0)
	t.Cleanup(func() { session.SetMemoryBudget(prev) })
	t.Setenv(session.EnvMemory, "96M")
	session.SetMemoryBudget(0) // re-read the environment
	if limit, _ := session.MemoryBudget(); limit != 96<<20 {
		t.Fatalf("budget %d with %s=96M", limit, session.EnvMemory)
	}
	os.Setenv(session.EnvMemory, "lots")
	session.SetMemoryBudget(0)
	if _, err := session.New("x"); err == nil || !strings.Contains(err.Error(), session.EnvMemory) {
		t.Fatalf("New with %s=lots: %v", session.EnvMemory, err)
	}
	session.SetMemoryBudget(64 << 20) // overrides the environment
	newSession(t)
	os.Unsetenv(session.EnvMemory)
	session.SetMemoryBudget(0)
	if limit, _ := session.MemoryBudget(); limit <= 0 || limit > session.DefaultMemoryBudget {
		t.Fatalf("default budget %d", limit)
	}
}

var overflowMark = marker.Define1("stest_overflow:tick", marker.Int("n"))

// TestGOMAXPROCSRaisedWhileRecording raises GOMAXPROCS while goroutines
// fire a marker into a session created for one P: events on the new Ps go
// to the overflow stream, allocated within the budget, and every event
// fired is delivered or counted as discarded. With a budget too small for
// the overflow shard, they are all counted, as unsharded.
func TestGOMAXPROCSRaisedWhileRecording(t *testing.T) {
	for _, room := range []bool{true, false} {
		name := map[bool]string{true: "budget", false: "no_budget"}[room]
		t.Run(name, func(t *testing.T) {
			withProcs(t, 1)
			_, base := session.MemoryBudget()
			extra := int64(0)
			if room {
				extra = 256 << 10
			}
			withBudget(t, base+256<<10+extra)
			s := newNamedSession(t, name, session.WithBufferSize(256<<10))
			mustEnable(t, s, "stest_overflow:tick", "")
			s.Start()
			runtime.GOMAXPROCS(4)
			var fired atomic.Uint64
			var delivered []event
			// The packets' own counts must account for every loss, as a
			// trace reader sums them: the last packet of each stream
			// carries its cumulative count, the unsharded losses in the
			// overflow stream's.
			lastDiscarded := map[int]uint64{}
			drain := func() {
				if err := s.Drain(func(p session.Packet) error {
					delivered = append(delivered, decodePacket(t, s, p)...)
					lastDiscarded[p.Stream] = p.Discarded
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			inOverflow := func() int {
				n := 0
				for _, e := range delivered {
					if e.stream == 1 {
						n++
					}
				}
				return n
			}
			fire := func(round int) {
				var wg sync.WaitGroup
				for g := range 8 {
					wg.Go(func() {
						// Go on until an event fired on a P without a shard
						// (the overflow stream exists, or an event was
						// unsharded), and 3000 events more.
						more := 3000
						for i := 0; i < more && i < 1e6; i++ {
							if i%64 == 0 && (room && s.Streams() < 2 || !room && s.Stats().Unsharded == 0) {
								more = i + 3000
							}
							overflowMark.Fire(round*1e7 + g*1e6 + i)
							fired.Add(1)
							if i%16 == 0 {
								runtime.Gosched()
							}
						}
					})
				}
				wg.Wait()
			}
			fire(0)
			// On a loaded machine the goroutines may all have run on
			// the P with a shard once the overflow stream existed: fire
			// again, drained, until one ran elsewhere.
			for round := 1; room && round < 100; round++ {
				drain()
				if inOverflow() > 0 {
					break
				}
				fire(round)
			}
			s.Stop()
			drain()
			st := s.Stats()
			var inPackets uint64
			for _, d := range lastDiscarded {
				inPackets += d
			}
			if inPackets != st.Discarded {
				t.Fatalf("packets count %d discarded events (%v per stream), the session %d", inPackets, lastDiscarded, st.Discarded)
			}
			t.Logf("fired %d, delivered %d, discarded %d, unsharded %d, streams %d", fired.Load(), len(delivered), st.Discarded, st.Unsharded, s.Streams())
			if len(delivered) > 0 && delivered[0].stream > 1 {
				t.Fatalf("event in stream %d", delivered[0].stream)
			}
			if st.Delivered+st.Discarded != fired.Load() || uint64(len(delivered)) != st.Delivered ||
				st.Markers[0].Delivered+st.Markers[0].Discarded != fired.Load() {
				t.Fatalf("fired %d; stats %+v", fired.Load(), st)
			}
			if room && (s.Streams() != 2 || s.Memory() != 512<<10 || inOverflow() == 0) {
				t.Fatalf("with room: %d streams, %d bytes, %d events in the overflow stream", s.Streams(), s.Memory(), inOverflow())
			}
			if !room && (s.Streams() != 1 || st.Unsharded == 0 || s.Memory() != 256<<10) {
				t.Fatalf("without room: %d streams, %d unsharded, %d bytes", s.Streams(), st.Unsharded, s.Memory())
			}
		})
	}
}

// freshModule returns a marker module name no other call returns, so that
// tests defining markers after a rule can run again (go test -count=2):
// markers live as long as the process.
func freshModule(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, freshSeq.Add(1))
}

var freshSeq atomic.Int64

// TestStartFromEnvFailureFreesTheBuffers checks that when StartFromEnv
// fails after creating its session (a bad TRACEMARK_ENABLE pattern, a
// filter that does not compile, a trace directory that cannot be made),
// the session's buffers are no longer charged to the recording memory
// budget.
func TestStartFromEnvFailureFreesTheBuffers(t *testing.T) {
	withBudget(t, 1<<30)
	mod := freshModule("stest_envfail")
	marker.Define1(mod+":event", marker.Int("status"))
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, enable, filter, output, want string
	}{
		{"bad pattern", mod + ":[", "", t.TempDir(), session.EnvEnable},
		{"bad filter", mod + ":*", "status >", t.TempDir(), session.EnvFilter},
		{"bad output", mod + ":*", "", filepath.Join(notDir, "trace"), "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(session.EnvEnable, tc.enable)
			t.Setenv(session.EnvFilter, tc.filter)
			t.Setenv(session.EnvOutput, tc.output)
			t.Setenv(session.EnvBuffer, "1M")
			_, before := session.MemoryBudget()
			tr, err := session.StartFromEnv()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				tr.Close()
				t.Fatalf("StartFromEnv: %v, want an error naming %q", err, tc.want)
			}
			if _, after := session.MemoryBudget(); after != before {
				t.Errorf("recording memory in use %d after the failed StartFromEnv, %d before", after, before)
			}
		})
	}
}
