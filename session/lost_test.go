package session_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

// btDiscarded matches Babeltrace 2's warning for a discarded events
// message, printed on stderr by its default (pretty) sink.
var btDiscarded = regexp.MustCompile(`WARNING: Tracer discarded (\d+) events? `)

// babeltraceTotals reads a trace with Babeltrace 2 and returns the number
// of events it prints and the sum of the discarded events it reports.
func babeltraceTotals(t *testing.T, dir string) (events, discarded uint64) {
	t.Helper()
	lines, stderr := babeltrace(t, dir)
	for _, m := range btDiscarded.FindAllStringSubmatch(stderr, -1) {
		n, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		discarded += n
	}
	return uint64(len(lines)), discarded
}

// TestTraceCountsEveryLostEvent fires N events from several goroutines
// into a tiny buffer drained now and then, and checks that Babeltrace's
// events plus discarded events are exactly N: the losses after each
// stream's last packet must be in the trace too.
func TestTraceCountsEveryLostEvent(t *testing.T) {
	m := marker.Define3("stest_lostall:e", marker.Int32("i"), marker.Int64("v"), marker.String("s"))
	for _, mode := range []session.Mode{session.Discard, session.Overwrite} {
		t.Run(mode.String(), func(t *testing.T) {
			s := newSession(t, session.WithMode(mode), session.WithBufferSize(16<<10))
			dir, tw := startRecording(t, s, "stest_lostall:e")
			const goroutines, perG = 4, 50_000
			var wg sync.WaitGroup
			var flushMu sync.Mutex
			var flushErr error
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perG {
						m.Fire(int32(i), int64(g), "hello")
						if i%5000 == 4999 && mode == session.Discard {
							flushMu.Lock()
							if err := tw.Flush(); err != nil && flushErr == nil {
								flushErr = err
							}
							flushMu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			if flushErr != nil {
				t.Fatal(flushErr)
			}
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			const n = goroutines * perG
			if st.Delivered+st.Discarded != n {
				t.Fatalf("session: delivered %d + discarded %d != fired %d", st.Delivered, st.Discarded, n)
			}
			if st.Discarded == 0 {
				t.Fatal("nothing was discarded: the buffer is too big for this test to mean anything")
			}
			events, discarded := babeltraceTotals(t, dir)
			if events+discarded != n {
				t.Errorf("babeltrace: %d events + %d discarded = %d, fired %d (session: delivered %d, discarded %d)",
					events, discarded, events+discarded, n, st.Delivered, st.Discarded)
			}
		})
	}
}

// TestSnapshotCountsEveryLostEvent checks that a flight-recorder snapshot
// also ends every stream with the cumulative count of lost events.
func TestSnapshotCountsEveryLostEvent(t *testing.T) {
	m := marker.Define1("stest_lostsnap:e", marker.Int("i"))
	s := newSession(t, session.WithMode(session.Overwrite), session.WithBufferSize(16<<10))
	mustEnable(t, s, "stest_lostsnap:e", "")
	s.Start()
	const n = 100_000
	for i := range n {
		m.Fire(i)
	}
	s.Stop()
	dir := filepath.Join(t.TempDir(), "snap")
	if err := session.WriteSnapshot(s, dir); err != nil {
		t.Fatal(err)
	}
	events, discarded := babeltraceTotals(t, dir)
	if events+discarded != n {
		t.Errorf("babeltrace: %d events + %d discarded = %d, fired %d", events, discarded, events+discarded, n)
	}
}

// TestStartFromEnvCountsEveryLostEvent runs a batch program traced from
// its environment into a tiny buffer: Babeltrace's events plus discarded
// events must be exactly what it fired.
func TestStartFromEnvCountsEveryLostEvent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trace")
	const n = 300_000
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLossyBatchProgram$")
	cmd.Env = append(os.Environ(), "TRACEMARK_TEST_BATCH="+strconv.Itoa(n),
		session.EnvEnable+"=stest_lossy:*", session.EnvOutput+"="+dir, session.EnvBuffer+"=16K")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("batch program: %v\n%s", err, out)
	}
	events, discarded := babeltraceTotals(t, dir)
	if events+discarded != n {
		t.Errorf("babeltrace: %d events + %d discarded = %d, fired %d", events, discarded, events+discarded, n)
	}
	if events == n {
		t.Error("nothing was lost: the buffer is too big for this test to mean anything")
	}
}

// TestHelperLossyBatchProgram is the batch program of the test above.
func TestHelperLossyBatchProgram(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TRACEMARK_TEST_BATCH"))
	if n < 2 {
		t.Skip("helper process")
	}
	ev := marker.Define3("stest_lossy:e", marker.Int32("i"), marker.Int64("v"), marker.String("s"))
	tr, err := session.StartFromEnv()
	if err != nil || tr == nil {
		t.Fatalf("StartFromEnv: %v, %v", tr, err)
	}
	for i := range n {
		ev.Fire(int32(i), int64(i), "hello")
	}
	if err := tr.Close(); err != nil {
		fmt.Println(err)
		t.Fatal(err)
	}
}

// TestWaitIsWokenByAFullSubBuffer checks that Session.Wait returns, with
// no timeout, as soon as recording fills a sub-buffer, and that
// TraceWriter.Run with an interval of an hour writes full packets anyway.
func TestWaitIsWokenByAFullSubBuffer(t *testing.T) {
	m := marker.Define3("stest_wake:e", marker.Int32("i"), marker.Int64("v"), marker.String("s"))
	// One shard: a firer that migrates between Ps on a loaded machine
	// would split a round's events between two shards, filling neither
	// sub-buffer.
	withProcs(t, 1)
	s := newSession(t, session.WithBufferSize(64<<10), session.WithSubBufSize(4<<10))
	mustEnable(t, s, "stest_wake:e", "")
	dir := filepath.Join(t.TempDir(), "trace")
	tw, err := session.CreateTrace(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	// The first Flush happens at once; Run then waits for a full
	// sub-buffer, with a fallback timer that never fires in this test.
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- tw.Run(ctx, time.Hour) }()
	const perSubBuf = 4096 / 28 // 3-field records of 28 bytes (nothing cut: no trailer)
	deadline := time.After(10 * time.Second)
	fired := 0
	for round := 1; round <= 5; round++ {
		for range perSubBuf + 1 {
			m.Fire(int32(fired), 0, "hello")
			fired++
		}
		// Every full sub-buffer must be written without the timer.
		for {
			events, _, _ := tw.Written()
			if events >= uint64(round*(perSubBuf-1)) {
				break
			}
			select {
			case <-deadline:
				t.Fatalf("round %d: %d events written of %d fired: Run was not woken", round, events, fired)
			default:
				runtime.Gosched()
			}
		}
	}
	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if st := s.Stats(); st.Discarded != 0 {
		t.Errorf("%d events discarded", st.Discarded)
	}
}

// TestRunUnderStress records from several goroutines into small buffers
// with TraceWriter.Run driven by wake-ups alone (its timer never fires),
// then reads the trace back: no event is written twice, none is missing
// that was not counted as discarded, and events plus discarded equal the
// events fired exactly.
func TestRunUnderStress(t *testing.T) {
	m := marker.Define2("stest_runstress:e", marker.Int("g"), marker.Int64("i"))
	s := newSession(t, session.WithBufferSize(64<<10), session.WithSubBufSize(4<<10))
	mustEnable(t, s, "stest_runstress:e", "")
	dir := filepath.Join(t.TempDir(), "trace")
	tw, err := session.CreateTrace(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- tw.Run(ctx, time.Hour) }()
	const goroutines, perG = 8, 20_000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				m.Fire(g, int64(i))
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	wg.Wait()
	s.Stop()
	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seen := make(map[[2]int64]bool)
	var events, discarded uint64
	for e, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		discarded += e.Discarded
		if e.Class == nil {
			continue
		}
		key := [2]int64{e.Fields[0].Int, e.Fields[1].Int}
		if seen[key] {
			t.Fatalf("event g%d #%d written twice", key[0], key[1])
		}
		seen[key] = true
		events++
	}
	st := s.Stats()
	if events+discarded != goroutines*perG || events != st.Delivered || discarded != st.Discarded {
		t.Errorf("trace: %d events + %d discarded, fired %d; session delivered %d, discarded %d",
			events, discarded, goroutines*perG, st.Delivered, st.Discarded)
	}
	t.Logf("%d events, %d discarded", events, discarded)
}

// TestWriterYieldsToStarvedReader fires flat out, without ever blocking,
// on a single P, into a buffer that holds a fraction of the events: the
// reader, woken by the sub-buffer switches, has no P to run on but the
// writer's. Without the writer yielding to a lagging reader it would run
// only when the scheduler preempts the writer (after 10 ms) and the
// buffer would overflow; with it, the reader drains each time a quarter
// of the buffer is full and nothing is lost.
func TestWriterYieldsToStarvedReader(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	m := marker.Define2("stest_yield:e", marker.Int("g"), marker.Int64("i"))
	s := newSession(t, session.WithBufferSize(64<<10), session.WithSubBufSize(4<<10))
	mustEnable(t, s, "stest_yield:e", "")
	s.Start()
	stop := make(chan struct{})
	ready := make(chan struct{})
	var drained uint64
	done := make(chan error, 1)
	go func() {
		close(ready)
		for {
			s.Wait(stop, 0) // no timer: only writers wake it
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := s.Drain(func(p session.Packet) error { drained += uint64(p.Events); return nil }); err != nil {
				done <- err
				return
			}
		}
	}()
	<-ready
	// One P: the reader runs until it parks in Wait.
	runtime.Gosched()
	// About a hundred times what the buffer holds.
	const fired = 200_000
	for i := range fired {
		m.Fire(1, int64(i))
	}
	s.Stop()
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Drain(func(p session.Packet) error { drained += uint64(p.Events); return nil }); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Discarded != 0 || drained != fired {
		t.Errorf("fired %d on one P: drained %d, discarded %d (the reader did not get the P)", fired, drained, st.Discarded)
	}
}
