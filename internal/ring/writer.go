package ring

import "github.com/tracemark/tracemark/internal/rt"

// Writer is space reserved by [Buffer.Reserve] for one record. It is a small
// value meant to live on the caller's stack between Reserve and Commit.
type Writer struct {
	s   *shard
	buf []byte
}

// Bytes returns the reserved space: exactly the n bytes asked for. The
// caller fills all of it, including the timestamp at
// Config.TimestampOffset, before [Buffer.Commit]. The slice must not be used
// after Commit.
func (w Writer) Bytes() []byte { return w.buf }

// Reserve pins the calling goroutine to its P and reserves n bytes in that
// P's shard.
//
// If ok is false the record was dropped and already counted (the shard is
// full in discard mode, the reader holds the sub-buffer to reuse in
// overwrite mode, n is outside [Config.MinRecordSize, SubBufSize], or the P
// has no shard and there is no overflow shard), and the goroutine is no
// longer pinned.
//
// If ok is true the goroutine stays pinned until [Buffer.Commit], which must
// follow promptly on the same goroutine. In between, the caller may only
// fill w.Bytes() and read a clock: it must not block, allocate, make
// channel or lock operations, call Reserve again, or call arbitrary user
// code, because the goroutine cannot be preempted and holds the shard.
// Beware of hidden blocking such as first-use initialisation behind a
// sync.Once (hash/crc32's tables, for one): the runtime aborts the program
// if a pinned goroutine parks.
func (b *Buffer) Reserve(n int) (w Writer, ok bool) {
	w, ok = b.ReservePinned(rt.Pin(), n)
	if !ok {
		rt.Unpin()
	}
	return w, ok
}

// Commit publishes the record reserved as w and unpins the goroutine. It must
// be called exactly once for every successful Reserve, on the same
// goroutine, and never for a failed one. The record's timestamp is read from
// its bytes, so Commit takes no timestamp argument.
func (b *Buffer) Commit(w Writer) {
	b.CommitPinned(w)
	rt.Unpin()
}

// ReservePinned is Reserve for a goroutine already pinned (see package
// pin) to the P whose id is pid: it neither pins nor unpins, and the same
// rules hold between it and [Buffer.CommitPinned], which must follow while
// the goroutine is still pinned.
func (b *Buffer) ReservePinned(pid, n int) (w Writer, ok bool) {
	if uint(pid) >= uint(len(b.shards)) {
		return b.reserveShared(n)
	}
	s := &b.shards[pid].shard
	raceAcquire(s)
	off := s.off
	// n <= len-off rather than off+n <= len: a huge n must not overflow.
	if n >= b.minRec && n <= len(s.data)-off {
		end := off + n
		return Writer{s: s, buf: s.data[off:end:end]}, true
	}
	return b.reserveSlow(s, n)
}

// reserveShared reserves n bytes in the overflow shard, for a P without a
// shard of its own. It holds the shard's lock until Commit, or returns
// without it if the record is dropped.
func (b *Buffer) reserveShared(n int) (Writer, bool) {
	o := b.over.Load()
	if o == nil {
		b.unsharded.Add(1)
		return Writer{}, false
	}
	s := &o.shard
	s.acquire()
	raceAcquire(s)
	if off := s.off; n >= b.minRec && n <= len(s.data)-off {
		end := off + n
		return Writer{s: s, buf: s.data[off:end:end]}, true
	}
	w, ok := b.reserveSlow(s, n)
	if !ok {
		s.release()
	}
	return w, ok
}

// TryReservePinned reserves max bytes in the current sub-buffer of shard
// pid if they fit there, for a record whose exact size is not known yet
// but is at most max: the caller then commits only what it used, with
// CommitPinned(w.Cut(n)). Unlike ReservePinned it never switches
// sub-buffers, seals, drops or counts: if ok is false nothing happened,
// and the caller measures the record and uses ReservePinned. It always
// fails on a P without a shard of its own, leaving the overflow shard to
// ReservePinned.
func (b *Buffer) TryReservePinned(pid, max int) (w Writer, ok bool) {
	if uint(pid) >= uint(len(b.shards)) {
		return Writer{}, false
	}
	s := &b.shards[pid].shard
	raceAcquire(s)
	off := s.off
	if max >= b.minRec && max <= len(s.data)-off {
		end := off + max
		return Writer{s: s, buf: s.data[off:end:end]}, true
	}
	raceRelease(s)
	return Writer{}, false
}

// Cut returns w reduced to its first n bytes, for committing a record
// shorter than the space reserved (see TryReservePinned). n must be at
// least Config.MinRecordSize and at most len(w.Bytes()).
func (w Writer) Cut(n int) Writer {
	w.buf = w.buf[:n:n]
	return w
}

// CommitPinned publishes the record reserved as w by ReservePinned or
// TryReservePinned.
func (b *Buffer) CommitPinned(w Writer) {
	s := w.s
	last := s.off
	s.off = last + len(w.buf)
	s.count++
	// The only synchronising store on the fast path: it makes the record's
	// bytes, and the prefix description, visible to the reader.
	publish(&s.cur.pub, pack(s.off, last, s.count))
	raceRelease(s)
	if s.shared {
		s.release()
	}
}

// drop counts a refused record.
func (b *Buffer) drop(s *shard) (Writer, bool) {
	s.dropped.Add(1)
	raceRelease(s)
	return Writer{}, false
}

// reserveSlow runs, still pinned, when the record does not fit in the
// current sub-buffer or has an invalid size.
func (b *Buffer) reserveSlow(s *shard, n int) (Writer, bool) {
	if n < b.minRec || n > b.cfg.SubBufSize {
		return b.drop(s)
	}
	if !s.sealed {
		s.seal()
	}
	if !b.switchSub(s) {
		return b.drop(s)
	}
	return Writer{s: s, buf: s.data[:n:n]}, true
}

// seal ends the current sub-buffer: once a record has not fit, no later
// (possibly smaller) record may go in, so that records dropped while no
// sub-buffer is available fall between this packet and the next one. The
// discarded count at this point is this packet's CTF events_discarded.
func (s *shard) seal() {
	s.sealed = true
	s.data = s.data[:s.off]
	s.cur.sealDisc.Store(s.discarded())
}

// switchSub closes the current sub-buffer and makes the next one in ring
// order current. It reports false, changing nothing, if the next sub-buffer
// cannot be claimed.
func (b *Buffer) switchSub(s *shard) bool {
	idx := s.curIdx + 1
	if idx == len(s.subs) {
		idx = 0
	}
	next := &s.subs[idx].subBuf
	lost, ok := b.claim(next)
	if !ok {
		return false
	}
	s.gen.Add(1) // Stats must not see the counters half-updated
	if lost > 0 {
		s.overwritten.Add(lost)
	}
	s.closedRecs.Add(uint64(s.count))
	s.closedBytes.Add(uint64(s.off))
	closeSub(s.cur)
	next.seq = s.seq
	s.seq++
	next.consumedR, next.consumedB = 0, 0
	next.pub.Store(0)
	next.sealDisc.Store(notSealed)
	next.state.Store(stWriting) // publishes seq and the reset to the reader
	s.cur, s.curIdx, s.data = next, idx, next.data
	s.off, s.count, s.sealed, s.switched = 0, 0, false, true
	s.pubIdx.Store(int64(idx))
	s.gen.Add(1)
	b.wakeReader() // after closeSub's CAS: see wake.go
	return true
}

// claim takes sb for the writer. A free sub-buffer is always claimable; in
// overwrite mode a full one is too, and lost is the number of its records
// the reader never consumed. A sub-buffer the reader is copying is not.
func (b *Buffer) claim(sb *subBuf) (lost uint64, ok bool) {
	v := sb.state.Load()
	if v != stFree && (v != stFull || !b.cfg.Overwrite) {
		return 0, false
	}
	// The CAS fails if the reader set stReader since the Load.
	if !sb.state.CompareAndSwap(v, stClaimed) {
		return 0, false
	}
	if v == stFull {
		_, _, count := unpack(sb.pub.Load())
		lost = uint64(count - sb.consumedR)
	}
	return lost, true
}

// closeSub moves sb from writing to full, keeping the reader flag: the reader
// may go on copying the prefix it saw, which the writer no longer changes.
func closeSub(sb *subBuf) {
	for {
		v := sb.state.Load()
		if sb.state.CompareAndSwap(v, v&stReader|stFull) {
			return
		}
	}
}
