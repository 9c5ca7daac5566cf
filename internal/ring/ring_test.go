package ring

import (
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/tracemark/tracemark/internal/rt"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{SubBufSize: 4096, SubBufCount: 2}
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"minimal", func(*Config) {}, true},
		{"default", func(c *Config) { *c = DefaultConfig() }, true},
		{"max size", func(c *Config) { c.SubBufSize = MaxSubBufSize }, true},
		{"overwrite", func(c *Config) { c.Overwrite = true }, true},
		{"ts at end", func(c *Config) { c.TimestampOffset = 4096 - 8 }, true},
		{"zero", func(c *Config) { *c = Config{} }, false},
		{"size too small", func(c *Config) { c.SubBufSize = 2048 }, false},
		{"size too big", func(c *Config) { c.SubBufSize = 2 * MaxSubBufSize }, false},
		{"size not power of two", func(c *Config) { c.SubBufSize = 6000 }, false},
		{"negative size", func(c *Config) { c.SubBufSize = -4096 }, false},
		{"one sub-buffer", func(c *Config) { c.SubBufCount = 1 }, false},
		{"too many sub-buffers", func(c *Config) { c.SubBufCount = MaxSubBufCount + 1 }, false},
		{"negative ts offset", func(c *Config) { c.TimestampOffset = -1 }, false},
		{"ts past end", func(c *Config) { c.TimestampOffset = 4096 - 7 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", c, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			if _, err2 := New(c); (err2 == nil) != tt.ok {
				t.Fatalf("New(%+v) = %v, want ok=%v", c, err2, tt.ok)
			}
		})
	}
}

// TestSingleWriter checks that records come out of Drain exactly once, in
// commit order per shard, in packets with correct timestamps and
// consecutive Seqs, and that a sub-buffer is only left when a record does
// not fit.
func TestSingleWriter(t *testing.T) {
	for _, tsOff := range []int{0, 12} {
		cfg := Config{SubBufSize: 4096, SubBufCount: 64, TimestampOffset: tsOff}
		b := mustNew(t, cfg)
		var clock atomic.Int64
		want := map[int][]uint64{}
		var bytes uint64
		const k = 3000
		for i := range uint64(k) {
			sh, ok := writeRec(b, &clock, 1, i)
			if !ok {
				t.Fatalf("record %d dropped", i)
			}
			want[sh] = append(want[sh], i)
			bytes += uint64(recSize(tsOff, i))
		}
		c := newChecker(tsOff, true)
		var pkts []Packet
		err := b.Drain(func(p Packet) error {
			pkts = append(pkts, p)
			return c.packet(p)
		})
		if err != nil {
			t.Fatal(err)
		}
		for sh, ctrs := range want {
			got := make([]uint64, 0, len(c.perShard[sh]))
			for _, r := range c.perShard[sh] {
				got = append(got, r.ctr)
			}
			if !slices.Equal(got, ctrs) {
				t.Fatalf("tsOff %d shard %d: drained %d records, want %d in commit order", tsOff, sh, len(got), len(ctrs))
			}
		}
		checkPacking(t, pkts, tsOff, cfg.SubBufSize)
		st := b.Stats()
		if c.records != k || st.Records != k || st.Consumed != k || st.Bytes != bytes || st.Discarded != 0 {
			t.Fatalf("drained %d; stats %+v; want %d records, %d bytes", c.records, st, k, bytes)
		}
		if err := b.Drain(func(p Packet) error { return errors.New("second drain emitted a packet") }); err != nil {
			t.Fatal(err)
		}
	}
}

// checkPacking verifies, for packets emitted from fresh sub-buffers, that
// seqs start at 0 per shard and that every closed sub-buffer was left only
// because the next record did not fit.
func checkPacking(t *testing.T, pkts []Packet, tsOff, size int) {
	t.Helper()
	lastOf := map[int]Packet{}
	for _, p := range pkts {
		prev, ok := lastOf[p.Shard]
		switch {
		case !ok && p.Seq != 0:
			t.Fatalf("shard %d starts at seq %d", p.Shard, p.Seq)
		case ok && prev.Final:
			first, err := decode(p.Data, tsOff)
			if err != nil {
				t.Fatal(err)
			}
			if used := prev.Offset + len(prev.Data); used+first.n <= size {
				t.Fatalf("shard %d seq %d closed at %d bytes though a %d-byte record fit", p.Shard, prev.Seq, used, first.n)
			}
		case ok && !prev.Final:
			t.Fatalf("shard %d: packet after non-final seq %d in one drain", p.Shard, prev.Seq)
		}
		lastOf[p.Shard] = p
	}
	for sh, p := range lastOf {
		if p.Final {
			t.Fatalf("shard %d: current sub-buffer %d reported final", sh, p.Seq)
		}
	}
}

// TestPartialDrain checks that Drain reads the committed prefix of the
// current sub-buffer and later continues it at the right offset.
func TestPartialDrain(t *testing.T) {
	oneP(t)
	b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 8})
	var clock atomic.Int64
	c := newChecker(0, true)
	ctr := uint64(0)
	write := func(n int) {
		for range n {
			if _, ok := writeRec(b, &clock, 1, ctr); !ok {
				t.Fatalf("record %d dropped", ctr)
			}
			ctr++
		}
	}
	drain := func() []Packet {
		var pkts []Packet
		if err := b.Drain(func(p Packet) error {
			pkts = append(pkts, p)
			return c.packet(p)
		}); err != nil {
			t.Fatal(err)
		}
		return pkts
	}

	write(10)
	p1 := drain()
	if len(p1) != 1 || p1[0].Seq != 0 || p1[0].Offset != 0 || p1[0].Final || p1[0].Records != 10 {
		t.Fatalf("first drain: %+v", p1)
	}
	write(10)
	p2 := drain()
	if len(p2) != 1 || p2[0].Seq != 0 || p2[0].Offset != len(p1[0].Data) || p2[0].Records != 10 {
		t.Fatalf("second drain: %+v", p2)
	}
	if p := drain(); len(p) != 0 {
		t.Fatalf("drain with nothing new emitted %d packets", len(p))
	}
	write(200) // about 10 KiB: closes seq 0 and fills seq 1 and 2
	p3 := drain()
	if len(p3) < 3 || p3[0].Seq != 0 || !p3[0].Final || p3[len(p3)-1].Final {
		t.Fatalf("third drain: %d packets, first %+v", len(p3), p3[0])
	}
	if c.records != 220 {
		t.Fatalf("drained %d records, want 220", c.records)
	}
}

// TestDrainError checks that a failing emit leaves its packet unconsumed
// and releases every sub-buffer the reader had locked.
func TestDrainError(t *testing.T) {
	oneP(t)
	b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 4, Overwrite: true})
	var clock atomic.Int64
	for i := range uint64(150) { // spans three sub-buffers
		writeRec(b, &clock, 1, i)
	}
	boom := errors.New("boom")
	calls := 0
	err := b.Drain(func(Packet) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("Drain = %v after %d calls, want boom after 1", err, calls)
	}
	for i := range b.shards[0].subs {
		if st := b.shards[0].subs[i].state.Load(); st&stReader != 0 {
			t.Fatalf("sub-buffer %d still locked by the reader: state %d", i, st)
		}
	}
	if st := b.Stats(); st.Consumed != 0 {
		t.Fatalf("consumed %d records after failed emit", st.Consumed)
	}
	c := newChecker(0, true)
	if err := b.Drain(c.packet); err != nil {
		t.Fatal(err)
	}
	if c.records != 150 || c.perShard[0][0].ctr != 0 {
		t.Fatalf("after failed drain, drained %d records", c.records)
	}
}

// TestReserveSizes checks the accepted record sizes; refused ones are
// dropped and counted.
func TestReserveSizes(t *testing.T) {
	b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 2, TimestampOffset: 8})
	for _, n := range []int{-1, 0, 15, 4097, int(^uint(0) >> 1)} {
		if _, ok := b.Reserve(n); ok {
			t.Fatalf("Reserve(%d) succeeded", n)
		}
	}
	for _, n := range []int{16, 4096} {
		w, ok := b.Reserve(n)
		if !ok || len(w.Bytes()) != n || cap(w.Bytes()) != n {
			t.Fatalf("Reserve(%d) = %d bytes, ok=%v", n, len(w.Bytes()), ok)
		}
		b.Commit(w)
	}
	if st := b.Stats(); st.Dropped != 5 || st.Records != 2 || st.Bytes != 4112 {
		t.Fatalf("stats %+v", st)
	}
}

// TestUnsharded checks that a record from a P without a shard is dropped
// and counted. A Buffer with no shards makes every P such a P.
func TestUnsharded(t *testing.T) {
	b, err := NewShards(Config{SubBufSize: 4096, SubBufCount: 2}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, ok := b.Reserve(32); ok {
			t.Fatal("Reserve succeeded without a shard")
		}
	}
	if st := b.Stats(); st.Unsharded != 3 || st.Dropped != 3 || st.Discarded != 3 || st.Records != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestOverwriteSkipsLockedSubBuffer checks that an overwrite-mode writer
// drops records rather than reuse a sub-buffer the reader holds, and
// overwrites it once released.
func TestOverwriteSkipsLockedSubBuffer(t *testing.T) {
	oneP(t)
	b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 2, Overwrite: true})
	var clock atomic.Int64
	ctr := uint64(0)
	for ; b.shards[0].curIdx == 0; ctr++ { // until sub-buffer 0 is full
		writeRec(b, &clock, 1, ctr)
	}
	_, _, inFirst := unpack(b.shards[0].subs[0].pub.Load())
	held := slices.Clone(b.lockShard(&b.shards[0].shard))
	rt.Unpin() // lockShard returns pinned
	if !slices.Equal(held, []heldSub{{0, 0}, {1, 1}}) {
		t.Fatalf("locked %v", held)
	}
	dropped := 0
	for range 200 { // far more than the 4 KiB left in sub-buffer 1
		if _, ok := writeRec(b, &clock, 1, ctr); !ok {
			dropped++
		}
		ctr++
	}
	if st := b.Stats(); dropped == 0 || st.Dropped != uint64(dropped) || st.Overwritten != 0 {
		t.Fatalf("dropped %d; stats %+v", dropped, st)
	}
	for _, i := range held {
		unlockReader(&b.shards[0].subs[i.idx].subBuf)
	}
	if _, ok := writeRec(b, &clock, 1, ctr); !ok {
		t.Fatal("write after unlock dropped")
	}
	if st := b.Stats(); st.Overwritten != uint64(inFirst) {
		t.Fatalf("overwritten %d, want the %d records of sub-buffer 0", st.Overwritten, inFirst)
	}
	c := newChecker(0, true)
	if err := b.Snapshot(c.packet); err != nil {
		t.Fatal(err)
	}
	if last := c.perShard[0][len(c.perShard[0])-1]; last.ctr != ctr {
		t.Fatalf("snapshot ends with #%d, want #%d", last.ctr, ctr)
	}
}

// TestAllocs checks that the write path, including sub-buffer switches and
// drops, and Drain do not allocate.
func TestAllocs(t *testing.T) {
	for _, overwrite := range []bool{false, true} {
		b := mustNew(t, Config{SubBufSize: 4096, SubBufCount: 2, Overwrite: overwrite})
		var i uint64
		write := func() {
			if w, ok := b.Reserve(32); ok {
				binary.LittleEndian.PutUint64(w.Bytes(), i)
				b.Commit(w)
			}
			i++
		}
		// 1000 runs of 32 bytes cross several 4 KiB sub-buffers.
		if a := testing.AllocsPerRun(1000, write); a != 0 {
			t.Errorf("%v: Reserve+Commit: %v allocs/op", modeName(overwrite), a)
		}
		emit := func(Packet) error { return nil }
		if a := testing.AllocsPerRun(100, func() { write(); _ = b.Drain(emit) }); a != 0 {
			t.Errorf("%v: Drain: %v allocs/op", modeName(overwrite), a)
		}
	}
}

// TestPack checks the published word at the extremes of its fields.
func TestPack(t *testing.T) {
	for _, c := range [][3]int{{0, 0, 0}, {MaxSubBufSize, MaxSubBufSize - 8, MaxSubBufSize / 8}, {4096, 4000, 77}} {
		if e, l, n := unpack(pack(c[0], c[1], c[2])); e != c[0] || l != c[1] || n != c[2] {
			t.Errorf("unpack(pack(%v)) = %d, %d, %d", c, e, l, n)
		}
	}
}

// TestTryReserve checks the reserve-the-most, commit-what-was-used path:
// records cut to their real size are packed back to back and read back
// intact, and a maximum that does not fit changes and counts nothing, so
// exact reservations still fill the sub-buffer to the last byte.
func TestTryReserve(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one P: one shard
	const tsOff, max, size = 0, 200, 4096
	b := mustNew(t, Config{SubBufSize: size, SubBufCount: 4, TimestampOffset: tsOff})
	try := func(i uint64) (n int, ok bool) {
		n = recSize(tsOff, i)
		w, ok := b.TryReservePinned(rt.Pin(), max)
		if ok && len(w.Bytes()) == max {
			encode(w.Bytes()[:n], tsOff, rec{ts: int64(i), gid: 1, ctr: i})
			b.CommitPinned(w.Cut(n))
		}
		rt.Unpin()
		return n, ok
	}
	var sizes []int
	used := 0
	for i := uint64(0); ; i++ {
		n, ok := try(i)
		if !ok {
			break
		}
		sizes = append(sizes, n)
		used += n
	}
	if used+max <= size || used > size {
		t.Fatalf("TryReservePinned refused %d bytes with %d of %d used", max, used, size)
	}
	if st := b.Stats(); st.Records != uint64(len(sizes)) || st.Dropped != 0 || st.Bytes != uint64(used) {
		t.Fatalf("stats %+v after %d records of %d bytes in all", st, len(sizes), used)
	}
	// Exact 16-byte records fill the rest of the packet; one more opens
	// the next.
	fill := (size - used) / 16
	var clock atomic.Int64
	clock.Store(1 << 40)
	for i := range fill + 1 {
		w, ok := b.Reserve(16)
		if !ok {
			t.Fatalf("exact record %d dropped", i)
		}
		binary.LittleEndian.PutUint64(w.Bytes(), uint64(clock.Add(1)))
		b.Commit(w)
	}
	var first Packet
	var got []rec
	if err := b.Drain(func(p Packet) error {
		if p.Seq == 0 {
			first = p
			rs, err := parsePacket(Packet{Data: p.Data[:used], Records: len(sizes), BeginTS: p.BeginTS, EndTS: int64(len(sizes) - 1)}, tsOff)
			got = rs
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(first.Data) != used+16*fill || first.Records != len(sizes)+fill {
		t.Fatalf("first packet: %d bytes, %d records; want %d, %d", len(first.Data), first.Records, used+16*fill, len(sizes)+fill)
	}
	for i, n := range sizes {
		if got[i].ctr != uint64(i) || got[i].n != n {
			t.Fatalf("record %d: ctr %d, %d bytes; want %d bytes", i, got[i].ctr, got[i].n, n)
		}
	}
}
