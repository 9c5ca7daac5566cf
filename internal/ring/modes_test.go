package ring

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
	"testing"
)

// TestDiscardExact fills a tiny discard-mode buffer with no reader and
// checks that every attempt is accounted for exactly and that Drain returns
// exactly the committed records, which are the oldest ones. It runs on one
// P so that all attempts target one shard; TestHammerDrain covers many.
func TestDiscardExact(t *testing.T) {
	oneP(t)
	cfg := Config{SubBufSize: 4096, SubBufCount: 2}
	b := mustNew(t, cfg)
	var clock atomic.Int64
	const attempts = 10000
	committed := map[int][]uint64{}
	dropped := 0
	for i := range uint64(attempts) {
		sh, ok := writeRec(b, &clock, 7, i)
		if !ok {
			dropped++
			continue
		}
		committed[sh] = append(committed[sh], i)
	}
	if ctrs := committed[0]; len(ctrs) == 0 || ctrs[len(ctrs)-1] != uint64(len(ctrs)-1) {
		t.Fatalf("committed records are not the oldest attempts: %d records ending with #%d", len(ctrs), ctrs[len(ctrs)-1])
	}
	st := b.Stats()
	ncommitted := attempts - dropped
	if dropped == 0 || st.Records != uint64(ncommitted) || st.Dropped != uint64(dropped) ||
		st.Discarded != uint64(dropped) || st.Overwritten != 0 || st.Records+st.Discarded != attempts {
		t.Fatalf("committed %d dropped %d; stats %+v", ncommitted, dropped, st)
	}
	for i, s := range st.Shards {
		if s.Bytes > uint64(cfg.SubBufSize*cfg.SubBufCount) {
			t.Fatalf("shard %d holds %d bytes", i, s.Bytes)
		}
	}
	c := newChecker(0, true)
	if err := b.Drain(c.packet); err != nil {
		t.Fatal(err)
	}
	if c.records != ncommitted {
		t.Fatalf("drained %d records, committed %d", c.records, ncommitted)
	}
	for sh, want := range committed {
		var got []uint64
		for _, r := range c.perShard[sh] {
			got = append(got, r.ctr)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("shard %d: drained %v..., want %v...", sh, got[:min(5, len(got))], want[:min(5, len(want))])
		}
	}
	// Draining freed the ring: writing works again.
	if _, ok := writeRec(b, &clock, 7, attempts); !ok {
		t.Fatal("write after drain dropped")
	}
}

// TestOverwriteSnapshot writes far more than fits into an overwrite-mode
// buffer and checks that Snapshot holds, per shard, the newest contiguous
// suffix of the committed records, repeatably, and that Drain then consumes
// the same records with exact counters.
func TestOverwriteSnapshot(t *testing.T) {
	cfg := Config{SubBufSize: 4096, SubBufCount: 4, Overwrite: true}
	b := mustNew(t, cfg)
	var clock atomic.Int64
	const attempts = 20000
	committed := map[int][]uint64{}
	for i := range uint64(attempts) {
		sh, ok := writeRec(b, &clock, 3, i)
		if !ok {
			t.Fatalf("record %d dropped with no reader", i)
		}
		committed[sh] = append(committed[sh], i)
	}
	snap := func() *checker {
		c := newChecker(0, true)
		if err := b.Snapshot(c.packet); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := snap()
	if !c.seen[[2]uint64{3, attempts - 1}] {
		t.Fatal("snapshot lacks the last record written")
	}
	st := b.Stats()
	for sh, want := range committed {
		held := c.perShard[sh]
		if len(held) == 0 {
			t.Fatalf("shard %d: snapshot empty", sh)
		}
		first := slices.Index(want, held[0].ctr)
		if first < 0 || len(want)-first != len(held) {
			t.Fatalf("shard %d: snapshot of %d records is not a suffix of %d", sh, len(held), len(want))
		}
		for k, r := range held {
			if r.ctr != want[first+k] {
				t.Fatalf("shard %d: snapshot record %d is #%d, want #%d", sh, k, r.ctr, want[first+k])
			}
		}
		bytes := 0
		for _, r := range held {
			bytes += r.n
		}
		// All sub-buffers but the current one are (nearly) full.
		if len(want) > len(held) && bytes < (cfg.SubBufCount-1)*(cfg.SubBufSize-80) {
			t.Fatalf("shard %d: snapshot holds only %d bytes", sh, bytes)
		}
		if s := st.Shards[sh]; s.Records != uint64(len(want)) || s.Overwritten+uint64(len(held)) != s.Records {
			t.Fatalf("shard %d: %d committed, %d held; stats %+v", sh, len(want), len(held), s)
		}
	}
	if st.Records+st.Dropped != attempts || st.Dropped != 0 {
		t.Fatalf("stats %+v, attempted %d", st, attempts)
	}
	if again := snap(); again.records != c.records {
		t.Fatalf("second snapshot has %d records, first %d", again.records, c.records)
	}
	d := newChecker(0, true)
	if err := b.Drain(d.packet); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); d.records != c.records || st.Consumed+st.Overwritten != st.Records {
		t.Fatalf("drained %d, snapshot %d; stats %+v", d.records, c.records, st)
	}
}

// TestSealAfterFailedSwitch checks that once a record has not fit, the
// sub-buffer takes nothing more, even a record that would fit, and that
// packets report the drops in CTF events_discarded fashion: after the
// packet they follow.
func TestSealAfterFailedSwitch(t *testing.T) {
	oneP(t)
	b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 2})
	write := func(n int, ts int64) bool {
		w, ok := b.Reserve(n)
		if ok {
			binary.LittleEndian.PutUint64(w.Bytes(), uint64(ts))
			b.Commit(w)
		}
		return ok
	}
	for i := range 8 { // four 1000-byte records per sub-buffer
		if !write(1000, int64(i)) {
			t.Fatalf("record %d dropped", i)
		}
	}
	if write(1000, 8) {
		t.Fatal("ninth 1000-byte record fit in two 4 KiB sub-buffers")
	}
	if write(64, 9) {
		t.Fatal("64-byte record went into a sealed sub-buffer with 96 bytes free")
	}
	var pkts []Packet
	collect := func(p Packet) error { pkts = append(pkts, p); return nil }
	if err := b.Drain(collect); err != nil {
		t.Fatal(err)
	}
	if len(pkts) != 2 || pkts[1].Seq != 1 || pkts[1].Records != 4 || pkts[1].Discarded != 0 || pkts[1].EndTS != 7 {
		t.Fatalf("packets %+v", pkts)
	}
	if !write(64, 10) {
		t.Fatal("write after drain dropped")
	}
	pkts = nil
	if err := b.Drain(collect); err != nil {
		t.Fatal(err)
	}
	if len(pkts) != 1 || pkts[0].Seq != 2 || pkts[0].Records != 1 || pkts[0].Discarded != 2 || pkts[0].BeginTS != 10 {
		t.Fatalf("packets %+v", pkts)
	}
}
