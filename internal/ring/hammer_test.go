package ring

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

const (
	hammerWriters = 12
	hammerRecords = 15000 // per writer
)

// hammer runs hammerWriters goroutines that each try to write
// hammerRecords records, while read runs in a loop on another goroutine.
// It returns the committed counters of each writer, and the newest record
// committed on each shard.
func hammer(t *testing.T, b *Buffer, read func() error) (committed [][]uint64, newest map[int]rec) {
	t.Helper()
	var clock atomic.Int64
	committed = make([][]uint64, hammerWriters)
	newestOf := make([]map[int]rec, hammerWriters)
	var writers sync.WaitGroup
	for g := range hammerWriters {
		newestOf[g] = map[int]rec{}
		writers.Go(func() {
			for i := range uint64(hammerRecords) {
				if sh, ts, ok := writeRecTS(b, &clock, uint32(g), i); ok {
					committed[g] = append(committed[g], i)
					newestOf[g][sh] = rec{ts: ts, gid: uint32(g), ctr: i}
				}
				if i%16 == 0 {
					runtime.Gosched() // let the reader in more often than once a quantum
				}
			}
		})
	}
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		for {
			if err := read(); err != nil {
				readErr <- err
				return
			}
			select {
			case <-stop:
				readErr <- nil
				return
			default:
				// Without this the poll loop would hog a lone P for
				// whole quanta under -cpu 1.
				runtime.Gosched()
			}
		}
	}()
	writers.Wait()
	close(stop)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	newest = map[int]rec{}
	for _, m := range newestOf {
		for sh, r := range m {
			if r.ts > newest[sh].ts {
				newest[sh] = r
			}
		}
	}
	return committed, newest
}

// TestHammerDrain checks concurrent writers against a draining reader:
// every record arrives intact and once, in order per writer and shard, and
// drained+discarded equals attempted exactly.
func TestHammerDrain(t *testing.T) {
	for _, overwrite := range []bool{false, true} {
		t.Run(modeName(overwrite), func(t *testing.T) {
			noLeak(t)
			b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 4, Overwrite: overwrite})
			c := newChecker(0, !overwrite)
			committed, _ := hammer(t, b, func() error { return b.Drain(c.packet) })
			if err := b.Drain(c.packet); err != nil {
				t.Fatal(err)
			}
			st := b.Stats()
			ncommitted := 0
			for g, ctrs := range committed {
				ncommitted += len(ctrs)
				if !overwrite {
					for _, i := range ctrs {
						if !c.seen[[2]uint64{uint64(g), i}] {
							t.Fatalf("committed record g%d #%d never drained", g, i)
						}
					}
				}
			}
			const attempted = hammerWriters * hammerRecords
			t.Logf("%v: attempted %d, drained %d, dropped %d, overwritten %d", modeName(overwrite), attempted, c.records, st.Dropped, st.Overwritten)
			if !overwrite && st.Overwritten != 0 {
				t.Fatalf("discard mode overwrote %d records", st.Overwritten)
			}
			if uint64(c.records)+st.Discarded != attempted || st.Records != uint64(ncommitted) ||
				st.Consumed != uint64(c.records) || st.Records+st.Dropped != attempted {
				t.Fatalf("drained %d, committed %d; stats %+v", c.records, ncommitted, st)
			}
		})
	}
}

// TestHammerSnapshot checks concurrent writers against a reader taking
// overwrite-mode snapshots: every snapshot is intact and ordered, and the
// counters are exact at the end. With 512-byte chunks, each sub-buffer is
// copied in several pinned sections, between which writers reclaim.
func TestHammerSnapshot(t *testing.T) {
	for _, chunk := range []int{snapChunk, 512} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			noLeak(t)
			b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 4, Overwrite: true})
			b.chunk = chunk
			snaps := 0
			_, newest := hammer(t, b, func() error {
				snaps++
				c := newChecker(0, true)
				if err := b.Snapshot(c.packet); err != nil {
					return fmt.Errorf("snapshot %d: %w", snaps, err)
				}
				return nil
			})
			final := newChecker(0, true)
			if err := b.Snapshot(final.packet); err != nil {
				t.Fatal(err)
			}
			// The newest record of each shard is in its current sub-buffer.
			for sh, r := range newest {
				if !final.seen[[2]uint64{uint64(r.gid), r.ctr}] {
					t.Fatalf("final snapshot lacks shard %d's newest record g%d #%d", sh, r.gid, r.ctr)
				}
			}
			st := b.Stats()
			t.Logf("%d snapshots; records %d, dropped %d, overwritten %d, held %d", snaps, st.Records, st.Dropped, st.Overwritten, final.records)
			if st.Records+st.Dropped != hammerWriters*hammerRecords || st.Overwritten+uint64(final.records) != st.Records {
				t.Fatalf("held %d; stats %+v", final.records, st)
			}
		})
	}
}
