package ring

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// Test records: [0:tsOff) filler, [tsOff:+8) timestamp, then length
// (uint16), goroutine id (uint32), counter (uint64), payload derived from
// (gid, ctr), and a CRC-32 of everything before it.
const recFixed = 8 + 2 + 4 + 8 + 4

type rec struct {
	ts  int64
	gid uint32
	ctr uint64
	n   int
}

// Computing a CRC-32 the first time initialises its tables under a
// sync.Once, which may block; writeRec computes checksums while pinned, where
// blocking is forbidden, so initialise them up front.
var _ = crc32.ChecksumIEEE(nil)

// recSize varies record sizes between the minimum and minimum+54 bytes.
func recSize(tsOff int, ctr uint64) int { return tsOff + recFixed + int(ctr*7%55) }

func encode(p []byte, tsOff int, r rec) {
	for i := range tsOff {
		p[i] = 0xEE
	}
	h := p[tsOff:]
	binary.LittleEndian.PutUint64(h, uint64(r.ts))
	binary.LittleEndian.PutUint16(h[8:], uint16(len(p)))
	binary.LittleEndian.PutUint32(h[10:], r.gid)
	binary.LittleEndian.PutUint64(h[14:], r.ctr)
	body := p[tsOff+22 : len(p)-4]
	for i := range body {
		body[i] = byte(uint64(r.gid)*31 + r.ctr + uint64(i))
	}
	binary.LittleEndian.PutUint32(p[len(p)-4:], crc32.ChecksumIEEE(p[:len(p)-4]))
}

// decode parses one record at the start of p.
func decode(p []byte, tsOff int) (rec, error) {
	if len(p) < tsOff+recFixed {
		return rec{}, fmt.Errorf("short record: %d bytes left", len(p))
	}
	h := p[tsOff:]
	n := int(binary.LittleEndian.Uint16(h[8:]))
	if n < tsOff+recFixed || n > len(p) {
		return rec{}, fmt.Errorf("bad record length %d (%d bytes left)", n, len(p))
	}
	if got, want := binary.LittleEndian.Uint32(p[n-4:]), crc32.ChecksumIEEE(p[:n-4]); got != want {
		return rec{}, fmt.Errorf("checksum mismatch %08x != %08x", got, want)
	}
	return rec{
		ts:  int64(binary.LittleEndian.Uint64(h)),
		gid: binary.LittleEndian.Uint32(h[10:]),
		ctr: binary.LittleEndian.Uint64(h[14:]),
		n:   n,
	}, nil
}

// parsePacket decodes every record of pkt and checks the packet's own
// description (record count, begin/end timestamps, timestamp order).
func parsePacket(pkt Packet, tsOff int) ([]rec, error) {
	var out []rec
	for p := pkt.Data; len(p) > 0; {
		r, err := decode(p, tsOff)
		if err != nil {
			return nil, fmt.Errorf("shard %d seq %d: %w", pkt.Shard, pkt.Seq, err)
		}
		if len(out) > 0 && r.ts < out[len(out)-1].ts {
			return nil, fmt.Errorf("shard %d seq %d: timestamp %d after %d", pkt.Shard, pkt.Seq, r.ts, out[len(out)-1].ts)
		}
		out = append(out, r)
		p = p[r.n:]
	}
	switch {
	case len(out) != pkt.Records:
		return nil, fmt.Errorf("shard %d seq %d: %d records, packet says %d", pkt.Shard, pkt.Seq, len(out), pkt.Records)
	case len(out) == 0:
		return nil, fmt.Errorf("shard %d seq %d: empty packet", pkt.Shard, pkt.Seq)
	case pkt.BeginTS != out[0].ts || pkt.EndTS != out[len(out)-1].ts:
		return nil, fmt.Errorf("shard %d seq %d: packet ts [%d,%d], records [%d,%d]",
			pkt.Shard, pkt.Seq, pkt.BeginTS, pkt.EndTS, out[0].ts, out[len(out)-1].ts)
	}
	return out, nil
}

// writeRec writes one test record; it reports whether it was committed and
// on which shard.
func writeRec(b *Buffer, clock *atomic.Int64, gid uint32, ctr uint64) (shard int, ok bool) {
	shard, _, ok = writeRecTS(b, clock, gid, ctr)
	return shard, ok
}

// writeRecTS is writeRec that also returns the record's timestamp, which
// comes from clock, read while pinned as real callers do.
func writeRecTS(b *Buffer, clock *atomic.Int64, gid uint32, ctr uint64) (shard int, ts int64, ok bool) {
	tsOff := b.cfg.TimestampOffset
	w, ok := b.Reserve(recSize(tsOff, ctr))
	if !ok {
		return -1, 0, false
	}
	ts = clock.Add(1)
	encode(w.Bytes(), tsOff, rec{ts: ts, gid: gid, ctr: ctr})
	shard = w.s.id
	b.Commit(w)
	return shard, ts, true
}

// streamState is what a checker remembers about one shard's packet stream.
type streamState struct {
	started bool
	last    Packet // Data cleared
	lastEnd int    // Offset+len(Data) of last
	lastCtr map[uint32]uint64
}

// checker validates a stream of packets: per shard Seq order, continuation
// of partially drained sub-buffers, non-overlapping timestamps, monotonic
// Discarded, record integrity, per-goroutine order and uniqueness.
type checker struct {
	tsOff       int
	consecutive bool // Seq must grow by exactly one between sub-buffers
	shards      map[int]*streamState
	seen        map[[2]uint64]bool
	perShard    map[int][]rec
	records     int
}

func newChecker(tsOff int, consecutive bool) *checker {
	return &checker{
		tsOff:       tsOff,
		consecutive: consecutive,
		shards:      map[int]*streamState{},
		seen:        map[[2]uint64]bool{},
		perShard:    map[int][]rec{},
	}
}

func (c *checker) packet(pkt Packet) error {
	recs, err := parsePacket(pkt, c.tsOff)
	if err != nil {
		return err
	}
	st := c.shards[pkt.Shard]
	if st == nil {
		st = &streamState{lastCtr: map[uint32]uint64{}}
		c.shards[pkt.Shard] = st
	}
	if err := st.follow(pkt, c.consecutive); err != nil {
		return fmt.Errorf("shard %d: %w", pkt.Shard, err)
	}
	for _, r := range recs {
		key := [2]uint64{uint64(r.gid), r.ctr}
		if c.seen[key] {
			return fmt.Errorf("record g%d #%d emitted twice", r.gid, r.ctr)
		}
		c.seen[key] = true
		if last, ok := st.lastCtr[r.gid]; ok && r.ctr <= last {
			return fmt.Errorf("shard %d: g%d #%d after #%d", pkt.Shard, r.gid, r.ctr, last)
		}
		st.lastCtr[r.gid] = r.ctr
	}
	c.perShard[pkt.Shard] = append(c.perShard[pkt.Shard], recs...)
	c.records += len(recs)
	st.last, st.lastEnd, st.started = pkt, pkt.Offset+len(pkt.Data), true
	st.last.Data = nil
	return nil
}

// follow checks pkt against the previous packet of the same shard.
func (st *streamState) follow(pkt Packet, consecutive bool) error {
	prev := st.last
	switch {
	case !st.started:
		return nil
	case pkt.Seq == prev.Seq:
		if prev.Final || pkt.Offset != st.lastEnd {
			return fmt.Errorf("seq %d continued at %d after final=%v end=%d", pkt.Seq, pkt.Offset, prev.Final, st.lastEnd)
		}
	case pkt.Seq < prev.Seq:
		return fmt.Errorf("seq %d after %d", pkt.Seq, prev.Seq)
	case pkt.Offset != 0:
		return fmt.Errorf("new seq %d starts at offset %d", pkt.Seq, pkt.Offset)
	case consecutive && pkt.Seq != prev.Seq+1:
		return fmt.Errorf("seq %d after %d", pkt.Seq, prev.Seq)
	}
	if pkt.BeginTS < prev.EndTS {
		return fmt.Errorf("seq %d begins at %d before previous end %d", pkt.Seq, pkt.BeginTS, prev.EndTS)
	}
	if pkt.Discarded < prev.Discarded {
		return fmt.Errorf("discarded went from %d to %d", prev.Discarded, pkt.Discarded)
	}
	return nil
}

// oneP runs the test with GOMAXPROCS=1 so that every record lands in shard
// 0, for tests that check exact packet layout.
func oneP(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}

// noLeak fails the test if it ends with more goroutines than it started
// with. A goroutine that has signalled its end may still be exiting, so it
// yields for up to a few seconds before deciding.
func noLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		start := time.Now()
		for time.Since(start) < 5*time.Second {
			if runtime.NumGoroutine() <= before {
				return
			}
			runtime.Gosched()
		}
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	})
}

func mustNew(t testing.TB, cfg Config) *Buffer {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// modeName names a Config.Overwrite setting in subtest names and messages.
func modeName(overwrite bool) string {
	if overwrite {
		return "overwrite"
	}
	return "discard"
}
