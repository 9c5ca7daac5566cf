package ring

import (
	"encoding/binary"
	"runtime"
	"slices"

	"github.com/tracemark/tracemark/internal/rt"
)

// Packet is a run of consecutive records from one sub-buffer of one shard,
// handed to the callback of [Buffer.Drain] or [Buffer.Snapshot]. The reader
// turns it into a CTF packet by adding a header and context.
type Packet struct {
	// Shard is the index of the shard (P) the records were written on.
	Shard int
	// Seq is the sub-buffer's sequence number in its shard. It grows by one
	// at every sub-buffer switch; a gap means whole sub-buffers were
	// overwritten. Drain may emit one sub-buffer in several packets (see
	// Offset), which then share Seq.
	Seq uint64
	// Offset is the byte offset of Data in its sub-buffer: 0 unless an
	// earlier Drain already emitted the sub-buffer's first records.
	Offset int
	// Final reports that the sub-buffer was closed by its writer, so no
	// later packet will have this Seq. When Final is false a later packet
	// may continue the sub-buffer at Offset+len(Data).
	Final bool
	// BeginTS and EndTS are the timestamps of the first and last record.
	BeginTS, EndTS int64
	// Records is the number of records in Data.
	Records int
	// Discarded is the shard's cumulative count of dropped plus overwritten
	// records when the sub-buffer was sealed (the first record that did not
	// fit), or when the packet was emitted if it is not sealed yet: CTF
	// events_discarded semantics. It never decreases along a shard.
	Discarded uint64
	// Data holds the records back to back. It aliases the ring and is valid
	// only until the callback returns.
	Data []byte
}

// Drain emits every committed record not yet consumed and consumes it: shard
// by shard, and within a shard in Seq order, full sub-buffers and the
// committed prefix of the current one. The current sub-buffer's later
// records come out of a later Drain as another packet with the same Seq and
// a larger Offset. Drain never blocks writers, so records committed while it
// runs may or may not be included.
//
// Data aliases the ring (no copy). While emit runs, the sub-buffer it reads
// is protected from reuse: an overwrite-mode writer that needs it drops its
// record instead, so emit should be quick.
//
// If emit returns an error, Drain stops and returns it; the packet passed to
// that failing call is not consumed and will be emitted again.
//
// Drain and Snapshot serialise on a mutex: one reader at a time. emit must
// not call Drain or Snapshot (it would deadlock); it may call Reserve and
// Commit.
func (b *Buffer) Drain(emit func(Packet) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eachShard(func(s *shard) error { return b.drainShard(s, emit) })
}

// eachShard calls f for each shard, the overflow shard last, unless the
// Buffer was freed. The caller holds b.mu.
func (b *Buffer) eachShard(f func(*shard) error) error {
	if b.freed {
		return nil
	}
	for i := range b.shards {
		if err := f(&b.shards[i].shard); err != nil {
			return err
		}
	}
	if o := b.over.Load(); o != nil {
		return f(&o.shard)
	}
	return nil
}

// Snapshot emits, without consuming anything and without stopping writers,
// a copy of what each shard currently holds: shard by shard, in Seq order,
// every record not yet consumed by Drain (overwrite mode's flight
// recorder). It allocates one shard's worth of memory (SnapshotBytes) for
// the copies, reused shard after shard and dropped when it returns. It
// copies at most 64 KiB at a time while pinned, so it delays neither
// writers nor the garbage collector's stop-the-world by more than a few
// microseconds; a writer that needs the sub-buffer being copied drops its
// record rather than wait. Data is valid only until emit returns. The same
// locking rules as Drain apply.
//
// Copying a shard takes time, during which an overwrite-mode writer may
// reclaim its oldest sub-buffers: those are left out, so a shard's
// snapshot is the newest consecutive run of the sub-buffers it held when
// its copy began.
func (b *Buffer) Snapshot(emit func(Packet) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.freed {
		return nil
	}
	b.snapBuf = make([]byte, 0, b.cfg.ShardBytes())
	defer func() { b.snapBuf = nil }()
	return b.eachShard(func(s *shard) error { return b.snapshotShard(s, emit) })
}

// heldSub names a sub-buffer locked by the reader, with its Seq at the time.
type heldSub struct {
	idx int
	seq uint64
}

// drainShard surveys s, then drains its sub-buffers oldest first, locking
// only one at a time so that an overwrite-mode writer, which reuses the
// oldest first, is held up as little as possible.
func (b *Buffer) drainShard(s *shard, emit func(Packet) error) error {
	held := b.survey(s)
	for _, h := range held {
		sb := &s.subs[h.idx].subBuf
		if !lockReader(sb) {
			continue // reclaimed and not yet published again
		}
		if sb.seq != h.seq {
			// Reclaimed since the survey: it now holds records newer
			// than every surveyed one, for the next Drain.
			unlockReader(sb)
			continue
		}
		if err := b.drainSub(s, sb, emit); err != nil {
			return err
		}
	}
	return nil
}

// snapshotShard surveys s, copies its sub-buffers newest first, then emits
// the copies oldest first. The surveyed sub-buffers have consecutive Seqs
// (the writer claims them in ring order without ever skipping one, and the
// reader frees them oldest first), and an overwrite-mode writer reclaims
// them oldest first too: copying newest first, the first one found
// reclaimed ends the copy, and what was copied stays consecutive.
func (b *Buffer) snapshotShard(s *shard, emit func(Packet) error) error {
	held := b.survey(s)
	pkts, buf := b.snapPkts[:0], b.snapBuf[:0]
	for i := len(held) - 1; i >= 0; i-- {
		pkt, ok := b.copySub(s, held[i], &buf)
		if !ok {
			break
		}
		if pkt.Records > 0 {
			pkts = append(pkts, pkt)
		}
	}
	slices.Reverse(pkts)
	b.snapPkts = pkts
	for _, pkt := range pkts {
		if err := emit(pkt); err != nil {
			return err
		}
	}
	return nil
}

// copySub appends to buf the unconsumed records of the sub-buffer h names,
// and describes them. It copies b.chunk bytes at a time, each time pinned
// and with the reader flag set, after checking that the sub-buffer still
// has h's Seq: a full sub-buffer, and the committed prefix of the current
// one, only change once reclaimed, which the reader flag prevents and the
// Seq check detects. It reports false, appending nothing, if the
// sub-buffer was reclaimed since the survey.
func (b *Buffer) copySub(s *shard, h heldSub, buf *[]byte) (Packet, bool) {
	sb := &s.subs[h.idx].subBuf
	start := len(*buf)
	var pkt Packet
	for first := true; ; first = false {
		rt.Pin()
		if !lockReader(sb) {
			rt.Unpin()
			*buf = (*buf)[:start]
			return Packet{}, false
		}
		if sb.seq != h.seq {
			unlockReader(sb)
			rt.Unpin()
			*buf = (*buf)[:start]
			return Packet{}, false
		}
		if first {
			v := sb.state.Load()
			p := sb.pub.Load() // loaded after v: final if v says full
			if _, _, count := unpack(p); count <= sb.consumedR {
				unlockReader(sb)
				rt.Unpin()
				return Packet{}, true // nothing to copy
			}
			pkt = b.packet(s, sb, v, p, sb.consumedR, sb.consumedB)
		}
		from := pkt.Offset + len(*buf) - start
		end := pkt.Offset + len(pkt.Data)
		to := min(end, from+b.chunk)
		*buf = append(*buf, sb.data[from:to]...) // never grows: capacity is a whole shard
		unlockReader(sb)
		rt.Unpin()
		if to == end {
			pkt.Data = (*buf)[start:len(*buf):len(*buf)]
			return pkt, true
		}
		if b.testChunk != nil {
			b.testChunk()
		}
	}
}

// survey returns the sub-buffers of s that hold data, sorted by Seq, as
// lockShard found them at one instant, and releases them at once: the
// reader locks each again, and checks its Seq, when it reads it.
func (b *Buffer) survey(s *shard) []heldSub {
	held := b.lockShard(s)
	for _, h := range held {
		unlockReader(&s.subs[h.idx].subBuf)
	}
	rt.Unpin()
	return held
}

// lockShard sets the reader flag on every writing or full sub-buffer of s
// and returns them sorted by Seq. It retries until no sub-buffer switch
// overlapped the locking, so the locked set is what the shard held at one
// instant: a sub-buffer claimed (or found free) during the scan can only
// receive a Seq above every locked one, which keeps Drain's output in Seq
// order across calls.
//
// lockShard returns with the reader goroutine pinned, and the caller
// unpins it once it has released what it does not need: while pinned the
// reader cannot be preempted with sub-buffers locked, which would make
// writers drop records for a whole scheduling quantum. Nothing between
// lockShard and rt.Unpin may block, allocate or call user code.
func (b *Buffer) lockShard(s *shard) []heldSub {
	for {
		rt.Pin()
		g := s.gen.Load()
		if g&1 == 0 {
			held := b.held[:0]
			for i := range s.subs {
				if sb := &s.subs[i].subBuf; lockReader(sb) {
					held = append(held, heldSub{i, sb.seq})
				}
			}
			b.held = held
			if s.gen.Load() == g {
				sortBySeq(held)
				return held
			}
			for _, h := range held {
				unlockReader(&s.subs[h.idx].subBuf)
			}
		}
		rt.Unpin()
		// A switch is short and its writer cannot be preempted.
		runtime.Gosched()
	}
}

// sortBySeq is an insertion sort: at most SubBufCount entries, already a
// rotation of sorted order, and no allocation.
func sortBySeq(held []heldSub) {
	for i := 1; i < len(held); i++ {
		for j := i; j > 0 && held[j].seq < held[j-1].seq; j-- {
			held[j], held[j-1] = held[j-1], held[j]
		}
	}
}

// lockReader sets the reader flag if sb holds data the writer may otherwise
// reclaim. It reports whether it did.
func lockReader(sb *subBuf) bool {
	for {
		v := sb.state.Load()
		if v != stWriting && v != stFull {
			return false
		}
		if sb.state.CompareAndSwap(v, v|stReader) {
			return true
		}
	}
}

// unlockReader clears the reader flag; the writer may have closed sb since.
func unlockReader(sb *subBuf) {
	for {
		v := sb.state.Load()
		if sb.state.CompareAndSwap(v, v&^stReader) {
			return
		}
	}
}

// drainSub emits the unconsumed records of sb, which the caller has locked,
// consumes them and releases sb. A full sub-buffer is freed; a writing one
// remembers how far it was read, and if the writer closes it meanwhile the
// loop goes round once more to emit its last records and free it.
func (b *Buffer) drainSub(s *shard, sb *subBuf, emit func(Packet) error) error {
	for {
		v := sb.state.Load()
		p := sb.pub.Load() // loaded after v: final if v says full
		end, _, count := unpack(p)
		if count > sb.consumedR {
			pkt := b.packet(s, sb, v, p, sb.consumedR, sb.consumedB)
			// CTF readers take the difference of consecutive packets'
			// counts as the records lost between them, so the stream's
			// count never goes down, even if a record refused on a P
			// without a shard was counted after the overflow shard's
			// seal read the count.
			pkt.Discarded = max(pkt.Discarded, s.drainDisc)
			if err := emit(pkt); err != nil {
				unlockReader(sb)
				return err
			}
			s.drainDisc = pkt.Discarded
			b.consumed.Add(uint64(count - sb.consumedR))
			sb.consumedR, sb.consumedB = count, end
		}
		if v&^stReader == stFull {
			sb.state.Store(stFree)
			return nil
		}
		if sb.state.CompareAndSwap(v, stWriting) {
			return nil
		}
	}
}

// packet describes records [fromR, count) of sb, which start at byte fromB.
func (b *Buffer) packet(s *shard, sb *subBuf, v uint32, p uint64, fromR, fromB int) Packet {
	end, last, count := unpack(p)
	disc := sb.sealDisc.Load()
	if disc == notSealed {
		if b.testDiscarded != nil {
			b.testDiscarded()
		}
		disc = s.discarded()
		// The writer may have sealed sb since the first load and gone on
		// dropping records: the live count would then exceed the count
		// sealed into sb, and the packet that ends sb would count fewer
		// discarded records than this one.
		if sealed := sb.sealDisc.Load(); sealed != notSealed {
			disc = sealed
		}
	}
	return Packet{
		Shard:     s.id,
		Seq:       sb.seq,
		Offset:    fromB,
		Final:     v&^stReader == stFull,
		BeginTS:   b.timestamp(sb.data, fromB),
		EndTS:     b.timestamp(sb.data, last),
		Records:   count - fromR,
		Discarded: disc,
		Data:      sb.data[fromB:end:end],
	}
}

// timestamp reads the timestamp of the record starting at off.
func (b *Buffer) timestamp(data []byte, off int) int64 {
	return int64(binary.LittleEndian.Uint64(data[off+b.cfg.TimestampOffset:]))
}
