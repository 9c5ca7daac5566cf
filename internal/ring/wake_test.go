package ring

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWakeInterleavings runs the two halves of the wake-up protocol (see
// wake.go) step by step in every interleaving: R1 announce, R2 recheck on
// the reader's side; W1 close a sub-buffer, W2 wake on the writer's. In
// each, the reader must learn of the full sub-buffer either from R2 or
// from a token already in the channel when it parks, and afterwards the
// flag must be clear and the channel empty, so that the next wait starts
// clean.
func TestWakeInterleavings(t *testing.T) {
	orders := []string{"WwRr", "WRwr", "WRrw", "RWwr", "RWrw", "RrWw"}
	for _, order := range orders {
		t.Run(order, func(t *testing.T) {
			b, err := NewShards(Config{SubBufSize: MinSubBufSize, SubBufCount: 2}, 1)
			if err != nil {
				t.Fatal(err)
			}
			s := &b.shards[0].shard
			found := false
			announced, cancelled, closed := false, false, false
			for _, step := range order {
				switch step {
				case 'R':
					b.announceSleep()
					announced = true
				case 'r':
					found = b.recheck()
					cancelled = found
				case 'W':
					closeSub(s.cur)
					closed = true
				case 'w':
					b.wakeReader()
				}
			}
			if !announced || !closed {
				t.Fatal("bad order")
			}
			// A sender must have sent exactly when the reader was
			// announced and had not withdrawn when W2 ran.
			wIdx, rIdx, cIdx := strings.IndexByte(order, 'w'), strings.IndexByte(order, 'R'), strings.IndexByte(order, 'r')
			wantSent := rIdx < wIdx && !(cancelled && cIdx < wIdx)
			if got := b.Stats().Wakeups; got != map[bool]uint64{true: 1}[wantSent] {
				t.Errorf("writer sent %d tokens, want sent=%v", got, wantSent)
			}
			if !found {
				// The reader parks: the token must be there already, or the
				// wake-up was lost (park would block for ever).
				if len(b.wake) != 1 {
					t.Fatalf("reader parks with no token in the channel and no full sub-buffer seen: lost wake-up")
				}
				if !b.park(nil, 0) {
					t.Error("park did not report the wake-up")
				}
			}
			if b.sleeping.Load() || len(b.wake) != 0 {
				t.Errorf("after the wait: sleeping=%v, %d tokens left", b.sleeping.Load(), len(b.wake))
			}
		})
	}
}

// TestWaitTimerAndStop checks the fallbacks: Wait returns false after its
// timeout or when stop is closed, with nothing full, and leaves the flag
// clear; with a full sub-buffer it returns true at once.
func TestWaitTimerAndStop(t *testing.T) {
	b := mustNew(t, Config{SubBufSize: MinSubBufSize, SubBufCount: 2})
	if b.Wait(nil, time.Millisecond) {
		t.Error("Wait on an empty buffer reported a full sub-buffer")
	}
	stop := make(chan struct{})
	close(stop)
	if b.Wait(stop, 0) {
		t.Error("Wait with stop closed reported a full sub-buffer")
	}
	if b.sleeping.Load() || len(b.wake) != 0 {
		t.Fatalf("sleeping=%v, %d tokens", b.sleeping.Load(), len(b.wake))
	}
	closeSub(b.shards[0].cur)
	if !b.Wait(nil, 0) {
		t.Error("Wait with a full sub-buffer did not return true")
	}
}

// fillOne writes records on P 0's shard (the test runs with one P) until
// the shard switches sub-buffers, and returns how many it committed.
func fillOne(b *Buffer, clock *atomic.Int64, gid uint32, ctr *uint64) int {
	s := &b.shards[0].shard
	n := 0
	for start := s.pubIdx.Load(); s.pubIdx.Load() == start; *ctr++ {
		if _, ok := writeRec(b, clock, gid, *ctr); ok {
			n++
		}
	}
	return n
}

// TestWakePingPong has one writer fill exactly one sub-buffer per round
// and then wait for the reader, which drains only when Wait says a
// sub-buffer is full: every round needs a wake-up (or a recheck that sees
// the full sub-buffer), so a single lost wake-up stalls the test, and Wait
// then fails it through its timeout instead of hanging.
func TestWakePingPong(t *testing.T) {
	oneP(t)
	const rounds = 3000
	b := mustNew(t, Config{SubBufSize: MinSubBufSize, SubBufCount: 4})
	var clock atomic.Int64
	drained := make(chan int)
	errc := make(chan error, 1)
	go func() {
		c := newChecker(0, true)
		for range rounds {
			if !b.Wait(nil, 10*time.Second) {
				errc <- fmt.Errorf("no wake-up within 10s after %d records: lost wake-up", c.records)
				return
			}
			if err := b.Drain(c.packet); err != nil {
				errc <- err
				return
			}
			drained <- c.records
		}
		errc <- nil
	}()
	var ctr uint64
	committed := 0
	for r := range rounds {
		committed += fillOne(b, &clock, 0, &ctr)
		select {
		case got := <-drained:
			// The last record of the round opened the next sub-buffer,
			// which the reader may or may not have drained yet.
			if got < committed-1 || got > committed {
				t.Fatalf("round %d: reader has %d records, writer committed %d", r, got, committed)
			}
		case err := <-errc:
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if st.Dropped != 0 {
		t.Errorf("%d records dropped: the reader did not keep up", st.Dropped)
	}
	t.Logf("%d rounds, %d wake-ups (the rest found the sub-buffer full before sleeping)", rounds, st.Wakeups)
}

// TestHammerWait runs writers on every P against a reader that drains only
// when Wait returns (woken by a writer, or its fallback timer): every
// record arrives once and intact, drained+discarded equals attempted, and
// writers never sent more wake-ups than they switched sub-buffers. (How
// often the reader sleeps depends on the timing; TestWakePingPong makes
// every round depend on a wake-up.)
func TestHammerWait(t *testing.T) {
	noLeak(t)
	b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 4})
	c := newChecker(0, true)
	stop := make(chan struct{})
	var mu sync.Mutex
	woken, timedOut := 0, 0
	committed, _ := hammer(t, b, func() error {
		w := b.Wait(stop, 50*time.Millisecond)
		mu.Lock()
		if w {
			woken++
		} else {
			timedOut++
		}
		mu.Unlock()
		return b.Drain(c.packet)
	})
	close(stop)
	if err := b.Drain(c.packet); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	ncommitted := 0
	for g, ctrs := range committed {
		ncommitted += len(ctrs)
		for _, i := range ctrs {
			if !c.seen[[2]uint64{uint64(g), i}] {
				t.Fatalf("committed record g%d #%d never drained", g, i)
			}
		}
	}
	const attempted = hammerWriters * hammerRecords
	var switches uint64
	for i := range b.shards {
		switches += b.shards[i].seq - 1
	}
	t.Logf("attempted %d, drained %d, dropped %d; %d switches, %d wake-ups; reader woken %d times, timer %d (GOMAXPROCS %d)",
		attempted, c.records, st.Dropped, switches, st.Wakeups, woken, timedOut, runtime.GOMAXPROCS(0))
	if uint64(c.records)+st.Discarded != attempted || st.Records != uint64(ncommitted) || st.Consumed != uint64(c.records) {
		t.Fatalf("drained %d, committed %d; stats %+v", c.records, ncommitted, st)
	}
	if st.Wakeups > switches {
		t.Errorf("%d wake-ups for %d sub-buffer switches", st.Wakeups, switches)
	}
}

// TestLagging checks when a writer is told that the reader is behind: only
// for a reader that waits, once a quarter of the shard's sub-buffers (two
// at least) are full, once per switch, and no longer once the reader
// drained them.
func TestLagging(t *testing.T) {
	b := mustNew(t, Config{SubBufSize: MinSubBufSize, SubBufCount: 8})
	// Each record fills a sub-buffer: writing one more closes the current.
	closeOne := func() {
		t.Helper()
		w, ok := b.ReservePinned(0, MinSubBufSize)
		if !ok {
			t.Fatal("record refused")
		}
		b.CommitPinned(w)
	}
	closeOne() // the first record fills sub-buffer 0
	for range 3 {
		closeOne()
	}
	if b.Lagging(0) {
		t.Error("Lagging before the reader ever waited")
	}
	if !b.Wait(nil, time.Nanosecond) {
		t.Fatal("Wait found no full sub-buffer")
	}
	closeOne()
	if !b.Lagging(0) {
		t.Error("four of eight sub-buffers full: not Lagging")
	}
	if b.Lagging(0) {
		t.Error("Lagging twice for one switch")
	}
	if b.Lagging(1) {
		t.Error("Lagging for a P without a shard")
	}
	if err := b.Drain(func(Packet) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if b.Lagging(0) {
		t.Error("Lagging after a drain")
	}
	closeOne()
	if b.Lagging(0) {
		t.Error("one sub-buffer full: Lagging")
	}
	closeOne()
	if !b.Lagging(0) {
		t.Error("two of eight sub-buffers full: not Lagging")
	}
}
