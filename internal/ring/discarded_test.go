package ring

import (
	"sync/atomic"
	"testing"
)

// TestDiscardedSealedWhileRead interleaves a writer with Drain's packet of
// the current sub-buffer, between its finding the sub-buffer unsealed and
// its reading the shard's discarded count: the writer fills the sub-buffer,
// seals it, fills the rest of the shard and drops a hundred records, all
// after the last record the packet holds. The packet, and every packet up
// to the drops, must count none of them (the count sealed into the
// sub-buffer), and the packet after the drops all of them.
func TestDiscardedSealedWhileRead(t *testing.T) {
	b, write, written := oneShard(t)
	for range 3 {
		write()
	}
	const drops = 100
	b.testDiscarded = func() {
		b.testDiscarded = nil
		for write() {
		}
		for range drops - 1 {
			if write() {
				t.Fatal("recorded with every sub-buffer full")
			}
		}
	}
	var pkts []Packet
	c := newChecker(0, true)
	collect := func(pkt Packet) error {
		pkts = append(pkts, pkt)
		return c.packet(pkt)
	}
	if err := b.Drain(collect); err != nil {
		t.Fatal(err)
	}
	if b.testDiscarded != nil {
		t.Fatal("Drain never read an unsealed sub-buffer's count")
	}
	if err := b.Drain(collect); err != nil {
		t.Fatal(err)
	}
	if !write() {
		t.Fatal("not recorded after the drain freed the shard")
	}
	if err := b.Drain(collect); err != nil {
		t.Fatal(err)
	}
	last := len(pkts) - 1
	for i, pkt := range pkts {
		want := uint64(0)
		if i == last {
			want = drops
		}
		if pkt.Discarded != want {
			t.Errorf("packet %d (seq %d at %d, %d records): %d discarded, want %d",
				i, pkt.Seq, pkt.Offset, pkt.Records, pkt.Discarded, want)
		}
	}
	if st := b.Stats(); st.Dropped != drops || uint64(c.records)+st.Discarded != *written {
		t.Fatalf("wrote %d, drained %d; stats %+v", *written, c.records, st)
	}
}

// TestDrainDiscardedNeverDecreases makes the count sealed into a
// sub-buffer lower than the count of the packet Drain emitted from it
// before, as a record refused on a P without a shard can when counted
// between the overflow shard's reading its count and sealing it: the
// stream's count must not go down, since CTF readers take the difference
// of consecutive packets' counts as the records lost between them.
func TestDrainDiscardedNeverDecreases(t *testing.T) {
	b, write, _ := oneShard(t)
	write()
	s := &b.shards[0].shard
	s.dropped.Store(7) // counted while the sub-buffer is being written
	var got []uint64
	drain := func() {
		t.Helper()
		if err := b.Drain(func(pkt Packet) error {
			got = append(got, pkt.Discarded)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	drain()
	s.dropped.Store(0) // the seal reads less than the packet did
	for s.cur == &s.subs[0].subBuf {
		write()
	}
	drain()
	if len(got) < 2 {
		t.Fatalf("%d packets", len(got))
	}
	for i, d := range got {
		if d != 7 {
			t.Errorf("packet %d: %d discarded, want 7 (counts %v)", i, d, got)
		}
	}
}

// oneShard returns a discard-mode Buffer of four 4 KiB sub-buffers with
// GOMAXPROCS=1, so every record goes to shard 0; write records the next
// record of goroutine 1 and says whether it was recorded, and written
// counts the records it tried.
func oneShard(t *testing.T) (b *Buffer, write func() bool, written *uint64) {
	oneP(t)
	b = mustNew(t, Config{SubBufSize: 4096, SubBufCount: 4})
	var clock atomic.Int64
	var ctr uint64
	return b, func() bool {
		_, ok := writeRec(b, &clock, 1, ctr)
		ctr++
		return ok
	}, &ctr
}
