package session_test

import (
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

var tidEvent = marker.Define3("stest_tid:fired", marker.Int64("tid"), marker.Int64("seq"), marker.String("s"))

var tidPlain = marker.Define1("stest_tid:plain", marker.Int64("tid"))

// TestThreadIDIsTheFiringThreads records events from goroutines locked to
// their threads, each carrying its gettid as a field, from one that moves
// to a new thread midway, and with strings of all lengths (the variable
// layout); every event's stream event context must be its field, in our
// reader and in Babeltrace's.
func TestThreadIDIsTheFiringThreads(t *testing.T) {
	needGettid(t)
	s := newSession(t, session.WithThreadID(), session.WithSubBufSize(4<<10), session.WithBufferSize(1<<20))
	if !s.ThreadID() {
		t.Fatal("ThreadID() = false for a session made WithThreadID")
	}
	dir, tw := startRecording(t, s, "stest_tid:*")
	const perThread = 300
	var wg, locked sync.WaitGroup
	locked.Add(4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tid := int64(gettid())
			// All four hold their threads before any fires: four threads.
			locked.Done()
			locked.Wait()
			for i := range perThread {
				tidEvent.Fire(tid, int64(g*perThread+i), strings.Repeat("x", i%40))
				tidPlain.Fire(tid)
			}
		}()
	}
	wg.Wait()
	// A goroutine that fires on one locked thread, then on another.
	moved := make(chan int64, 2)
	go func() {
		runtime.LockOSThread()
		tid := int64(gettid())
		tidPlain.Fire(tid)
		moved <- tid
		// Exiting locked ends the thread: the next goroutine gets another.
	}()
	first := <-moved
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid := int64(gettid())
		tidPlain.Fire(tid)
		moved <- tid
	}()
	second := <-moved
	if first == second {
		t.Fatalf("both locked goroutines ran on thread %d", first)
	}
	r := stopRecording(t, s, tw, dir)
	tids := map[int64]int{}
	n := 0
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.ContextFields) != 1 || ev.ContextFields[0].Name != "vtid" {
			t.Fatalf("stream event context %v, want vtid alone", ev.ContextFields)
		}
		vtid := int64(ev.Context[0].Uint)
		if want := ev.Fields[0].Int; vtid != want {
			t.Fatalf("event %d (%s): vtid %d, fired on thread %d", n, ev.Class.Name, vtid, want)
		}
		tids[vtid]++
		n++
	}
	if want := 4*2*perThread + 2; n != want {
		t.Fatalf("read %d events, want %d", n, want)
	}
	if len(tids) < 4 {
		t.Errorf("events of %d threads, want at least 4: %v", len(tids), tids)
	}
	if tids[first] == 0 || tids[second] == 0 {
		t.Errorf("no event of the moved goroutine's first (%d) or second (%d) thread", first, second)
	}

	lines, _ := babeltrace(t, dir)
	count := 0
	for _, l := range lines {
		// ... stest_tid:plain: { cpu_id = 0 }, { vtid = 123 }, { tid = 123 }
		_, ctx, ok := strings.Cut(l, "{ vtid = ")
		if !ok {
			t.Fatalf("babeltrace line without vtid: %q", l)
		}
		vtid, rest, _ := strings.Cut(ctx, " }")
		_, field, ok := strings.Cut(rest, "{ tid = ")
		if !ok {
			t.Fatalf("babeltrace line without the tid field: %q", l)
		}
		field, _, _ = strings.Cut(field, ",")
		field = strings.TrimSuffix(field, " }")
		if _, err := strconv.Atoi(vtid); err != nil || vtid != field {
			t.Fatalf("babeltrace: context vtid %q, field tid %q: %q", vtid, field, l)
		}
		count++
	}
	if count != n {
		t.Fatalf("babeltrace shows %d events, our reader %d", count, n)
	}
}

// TestThreadIDOverwrite: in a flight recorder the oldest records are
// overwritten, and every record that remains still carries its thread.
func TestThreadIDOverwrite(t *testing.T) {
	needGettid(t)
	s := newSession(t, session.WithThreadID(), session.WithMode(session.Overwrite),
		session.WithSubBufSize(4<<10), session.WithBufferSize(16<<10))
	mustEnable(t, s, "stest_tid:plain", "")
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var wg, locked sync.WaitGroup
	locked.Add(3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tid := int64(gettid())
			locked.Done()
			locked.Wait()
			for range 5000 {
				tidPlain.Fire(tid)
			}
		}()
	}
	wg.Wait()
	s.Stop()
	dir := filepath.Join(t.TempDir(), "snap")
	if err := session.WriteSnapshot(s, dir); err != nil {
		t.Fatal(err)
	}
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Class == nil {
			continue // the notice of the overwritten events
		}
		if got, want := int64(ev.Context[0].Uint), ev.Fields[0].Int; got != want {
			t.Fatalf("event %d: vtid %d, fired on thread %d", n, got, want)
		}
		n++
	}
	if n == 0 || s.Stats().Discarded == 0 && n >= 15000 {
		t.Fatalf("snapshot holds %d events: want some, fewer than the 15000 fired", n)
	}
}

// TestThreadIDOneP hands one P from thread to thread: with GOMAXPROCS 1,
// three goroutines locked to their threads fire in turn, passing a token,
// so that every event runs on the same P and shard as the previous one but
// on another M. Each must carry its own thread's id, never the previous
// one's.
func TestThreadIDOneP(t *testing.T) {
	needGettid(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := newSession(t, session.WithThreadID(), session.WithSubBufSize(4<<10), session.WithBufferSize(64<<10))
	dir, tw := startRecording(t, s, "stest_tid:plain")
	const threads, rounds = 3, 200
	turns := make([]chan struct{}, threads)
	for i := range turns {
		turns[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for g := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tid := int64(gettid())
			for r := range rounds {
				<-turns[g]
				tidPlain.Fire(tid)
				if next := (g + 1) % threads; next != 0 || r < rounds-1 {
					turns[next] <- struct{}{}
				}
			}
		}()
	}
	turns[0] <- struct{}{}
	wg.Wait()
	r := stopRecording(t, s, tw, dir)
	var order []int64
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if got, want := int64(ev.Context[0].Uint), ev.Fields[0].Int; got != want {
			t.Fatalf("event %d: vtid %d, fired on thread %d", len(order), got, want)
		}
		order = append(order, ev.Fields[0].Int)
	}
	if len(order) != threads*rounds {
		t.Fatalf("read %d events, want %d", len(order), threads*rounds)
	}
	for i := threads; i < len(order); i++ {
		if order[i] != order[i-threads] || order[i] == order[i-1] {
			t.Fatalf("event %d of thread %d: the turns were not taken in order (%v...)", i, order[i], order[:min(len(order), 9)])
		}
	}
}
