package session_test

import (
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

// TestSnapshotsWhileRecording takes snapshots of an overwrite session
// while goroutines keep recording into it: every snapshot is a valid trace
// (our reader and Babeltrace agree on it) whose streams hold, per
// goroutine, increasing values, and recording is not disturbed.
func TestSnapshotsWhileRecording(t *testing.T) {
	m := marker.Define2("stest_snaphammer:tick", marker.Int("g"), marker.Int("n"))
	s := newSession(t, session.WithMode(session.Overwrite), session.WithBufferSize(64<<10), session.WithSubBufSize(4<<10))
	mustEnable(t, s, "stest_snaphammer:tick", "")
	s.Start()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var fired atomic.Uint64
	for g := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				m.Fire(g, n)
				fired.Add(1)
				if n%64 == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	base := t.TempDir()
	const snaps = 6
	for i := range snaps {
		for start := fired.Load(); fired.Load() < start+5000; {
			runtime.Gosched() // let the writers fill the buffers again
		}
		dir := filepath.Join(base, strconv.Itoa(i))
		if err := session.WriteSnapshot(s, dir); err != nil {
			t.Fatal(err)
		}
		r, err := ctf.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		events := 0
		last := map[[2]int64]int64{} // (stream, g) -> n
		for e, err := range r.Events() {
			if err != nil {
				t.Fatalf("snapshot %d: %v", i, err)
			}
			if e.Class == nil {
				continue
			}
			events++
			key := [2]int64{int64(e.Stream), e.Fields[0].Int}
			if n, ok := last[key]; ok && e.Fields[1].Int <= n {
				t.Fatalf("snapshot %d, stream %d: goroutine %d's event %d after %d", i, e.Stream, key[1], e.Fields[1].Int, n)
			}
			last[key] = e.Fields[1].Int
		}
		r.Close()
		if events == 0 {
			t.Fatalf("snapshot %d is empty", i)
		}
		if lines, _ := babeltrace(t, dir); len(lines) != events {
			t.Fatalf("snapshot %d: babeltrace reads %d events, our reader %d", i, len(lines), events)
		}
	}
	close(stop)
	wg.Wait()
	s.Stop()
	// Recorded counts overwritten events too; the marker's Discarded
	// counts those refused.
	if st := s.Stats(); st.Recorded+st.Markers[0].Discarded != fired.Load() {
		t.Fatalf("fired %d; stats %+v", fired.Load(), st)
	}
}
