package ring

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// TestOverflowShard checks the overflow shard on a Buffer without per-P
// shards, where every P is a P without a shard: records are refused and
// counted until AllocOverflow, then recorded in stream Shards(), whose
// packets count the earlier refusals as discarded.
func TestOverflowShard(t *testing.T) {
	b, err := NewShards(Config{SubBufSize: 4096, SubBufCount: 2}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	for i := range uint64(3) {
		if _, ok := writeRec(b, &clock, 1, i); ok {
			t.Fatal("recorded without a shard")
		}
	}
	if b.Overflow() || b.Bytes() != 0 {
		t.Fatalf("overflow %v, %d bytes before AllocOverflow", b.Overflow(), b.Bytes())
	}
	if !b.AllocOverflow() || b.AllocOverflow() {
		t.Fatal("AllocOverflow should succeed once")
	}
	if b.Bytes() != 8192 {
		t.Fatalf("%d bytes with the overflow shard, want 8192", b.Bytes())
	}
	for i := uint64(3); i < 10; i++ {
		if sh, ok := writeRec(b, &clock, 1, i); !ok || sh != 0 {
			t.Fatalf("record %d: ok %v on shard %d, want the overflow shard 0", i, ok, sh)
		}
	}
	c := newChecker(0, true)
	if err := b.Drain(c.packet); err != nil {
		t.Fatal(err)
	}
	if c.records != 7 || c.shards[0] == nil || c.shards[0].last.Discarded != 3 {
		t.Fatalf("drained %d records, shards %v", c.records, c.shards)
	}
	st := b.Stats()
	if st.Unsharded != 3 || st.Records != 7 || st.Dropped != 3 || st.Discarded != 3 ||
		len(st.Shards) != 1 || st.Shards[0].Records != 7 {
		t.Fatalf("stats %+v", st)
	}
}

// TestGOMAXPROCSRaised raises GOMAXPROCS while goroutines record into a
// Buffer sized for one P, allocates the overflow shard midway, and lowers
// GOMAXPROCS again: nothing crashes, every record is drained intact or
// counted as discarded, and the counters balance exactly.
func TestGOMAXPROCSRaised(t *testing.T) {
	for _, overwrite := range []bool{false, true} {
		t.Run(modeName(overwrite), func(t *testing.T) {
			prev := runtime.GOMAXPROCS(1)
			t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
			b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 4, Overwrite: overwrite})
			if b.Shards() != 1 {
				t.Fatalf("%d shards with GOMAXPROCS=1", b.Shards())
			}
			const writers, records = 12, 6000
			var clock, attempted atomic.Int64
			c := newChecker(0, !overwrite)
			stop := make(chan struct{})
			var reader sync.WaitGroup
			reader.Go(func() {
				for {
					if err := b.Drain(c.packet); err != nil {
						t.Error(err)
						return
					}
					select {
					case <-stop:
						return
					default:
						runtime.Gosched()
					}
				}
			})
			// Three phases of records/3 records per writer: with one P,
			// with eight Ps and no overflow shard, with eight Ps and the
			// overflow shard. The test changes the setting between phases.
			var phase sync.WaitGroup
			next := make([]chan struct{}, 3)
			for i := range next {
				next[i] = make(chan struct{})
			}
			// A phase goes on past records/3 (up to a hundred times as
			// long: on a loaded machine the writers may run on P 0 for
			// long stretches) until its case was seen: a record refused
			// for lack of a shard, one recorded in the overflow shard.
			seen := []func(Stats) bool{
				func(Stats) bool { return true },
				func(st Stats) bool { return st.Unsharded > 0 },
				func(st Stats) bool { return len(st.Shards) == 2 && st.Shards[1].Records > 0 },
			}
			phase.Add(writers)
			for g := range writers {
				go func() {
					ctr := uint64(0)
					for p := range 3 {
						<-next[p]
						for i := 0; i < records/3 || i < 100*records/3 && (i%64 != 0 || !seen[p](b.Stats())); i++ {
							writeRec(b, &clock, uint32(g), ctr)
							ctr++
							attempted.Add(1)
							if i%16 == 0 {
								runtime.Gosched()
							}
						}
						phase.Done()
					}
				}()
			}
			close(next[0])
			phase.Wait()
			phase.Add(writers)
			runtime.GOMAXPROCS(8)
			close(next[1])
			phase.Wait()
			phase.Add(writers)
			b.AllocOverflow()
			close(next[2])
			phase.Wait()
			runtime.GOMAXPROCS(2)
			close(stop)
			reader.Wait()
			if err := b.Drain(c.packet); err != nil {
				t.Fatal(err)
			}
			st := b.Stats()
			t.Logf("attempted %d, drained %d, unsharded %d, in overflow %d, dropped %d, overwritten %d",
				attempted.Load(), c.records, st.Unsharded, st.Shards[len(st.Shards)-1].Records, st.Dropped, st.Overwritten)
			if len(st.Shards) != 2 || st.Unsharded == 0 || st.Shards[1].Records == 0 {
				t.Fatalf("want records refused in phase 2 and recorded in the overflow shard in phase 3; stats %+v", st)
			}
			if a := uint64(attempted.Load()); st.Records+st.Dropped != a || uint64(c.records)+st.Discarded != a ||
				st.Consumed != uint64(c.records) {
				t.Fatalf("attempted %d, drained %d; stats %+v", a, c.records, st)
			}
		})
	}
}

// TestSnapshotReclaimedWhileCopying interleaves a writer with a snapshot's
// copy, between two chunks: the writer reclaims the oldest sub-buffers, and
// the snapshot holds the newest consecutive sub-buffers it surveyed,
// nothing written after it began, and none of the reclaimed ones.
func TestSnapshotReclaimedWhileCopying(t *testing.T) {
	oneP(t)
	b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 4, Overwrite: true})
	b.chunk = 1024
	var clock atomic.Int64
	ctr := uint64(0)
	for ; b.shards[0].seq < 7; ctr++ { // wrapped: seqs 3 to 6 held
		writeRec(b, &clock, 1, ctr)
	}
	before := newChecker(0, true)
	if err := b.Snapshot(before.packet); err != nil {
		t.Fatal(err)
	}
	held := before.perShard[0]
	// Between two chunks of the first (newest) sub-buffer's copy, write
	// until the two oldest sub-buffers are reclaimed.
	calls := 0
	b.testChunk = func() {
		if calls++; calls == 1 {
			for s := b.shards[0].seq; b.shards[0].seq < s+2; ctr++ {
				writeRec(b, &clock, 1, ctr)
			}
		}
	}
	c := newChecker(0, true)
	if err := b.Snapshot(c.packet); err != nil {
		t.Fatal(err)
	}
	if calls < 3 {
		t.Fatalf("copied in %d chunks: the test needs several", calls)
	}
	got := c.perShard[0]
	// Sub-buffers 3 and 4 were reclaimed; 5 and 6 (the current one) were
	// copied: a proper suffix of what the first snapshot held.
	first := slices.IndexFunc(held, func(r rec) bool { return r.ctr == got[0].ctr })
	if first <= 0 || len(held)-first != len(got) {
		t.Fatalf("snapshot of %d records from #%d is not a proper suffix of the %d held", len(got), got[0].ctr, len(held))
	}
	for k, r := range got {
		if r.ctr != held[first+k].ctr {
			t.Fatalf("record %d is #%d, want #%d", k, r.ctr, held[first+k].ctr)
		}
	}
	if c.shards[0].last.Seq != before.shards[0].last.Seq {
		t.Fatalf("snapshot ends at seq %d, want %d", c.shards[0].last.Seq, before.shards[0].last.Seq)
	}
}

// TestFree checks that a freed Buffer drops its memory and emits nothing,
// while its counters stay readable.
func TestFree(t *testing.T) {
	b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 2, Overwrite: true})
	var clock atomic.Int64
	for i := range uint64(10) {
		writeRec(b, &clock, 1, i)
	}
	b.Free()
	for i := range b.shards {
		for j := range b.shards[i].subs {
			if b.shards[i].subs[j].data != nil || b.shards[i].data != nil {
				t.Fatalf("shard %d keeps its memory", i)
			}
		}
	}
	emit := func(Packet) error { t.Fatal("a freed Buffer emitted a packet"); return nil }
	if err := b.Drain(emit); err != nil {
		t.Fatal(err)
	}
	if err := b.Snapshot(emit); err != nil {
		t.Fatal(err)
	}
	if b.AllocOverflow() {
		t.Fatal("AllocOverflow on a freed Buffer")
	}
	if st := b.Stats(); st.Records != 10 {
		t.Fatalf("stats after Free: %+v", st)
	}
}
