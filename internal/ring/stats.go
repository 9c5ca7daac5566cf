package ring

import "runtime"

// ShardStats are the counters of one shard, or their sums.
type ShardStats struct {
	// Records and Bytes count committed records, including any later
	// overwritten.
	Records, Bytes uint64
	// Dropped counts records refused by Reserve.
	Dropped uint64
	// Overwritten counts committed records destroyed in overwrite mode
	// before the reader consumed them.
	Overwritten uint64
	// Discarded is Dropped + Overwritten.
	Discarded uint64
}

func (a *ShardStats) add(s ShardStats) {
	a.Records += s.Records
	a.Bytes += s.Bytes
	a.Dropped += s.Dropped
	a.Overwritten += s.Overwritten
	a.Discarded += s.Discarded
}

// Stats are a Buffer's counters. Every counter is exact: once writers are
// quiescent, Records+Dropped equals the number of Reserve calls and
// Consumed+Overwritten+(records still held) equals Records. While writers
// run, each shard's figures are a consistent snapshot of that shard.
type Stats struct {
	// ShardStats holds the totals over all shards; its Dropped and
	// Discarded include Unsharded.
	ShardStats
	// Unsharded counts records dropped because they were written on a P
	// whose id is not below Shards() (GOMAXPROCS raised after New) while
	// there was no overflow shard (see Buffer.AllocOverflow).
	Unsharded uint64
	// Consumed counts records emitted by Drain.
	Consumed uint64
	// Shards holds per-shard counters, indexed like Packet.Shard: the
	// overflow shard's are last, at index Buffer.Shards(), once allocated.
	Shards []ShardStats
	// Wakeups counts the times a writer woke the reader sleeping in
	// [Buffer.Wait]: at most one per sub-buffer switch.
	Wakeups uint64
}

// Stats returns the Buffer's counters. It never blocks writers and may be
// called from any goroutine, concurrently with the reader.
func (b *Buffer) Stats() Stats {
	o := b.over.Load()
	st := Stats{Shards: make([]ShardStats, len(b.shards), len(b.shards)+1)}
	for i := range b.shards {
		st.Shards[i] = b.shards[i].stats()
		st.add(st.Shards[i])
	}
	if o != nil {
		st.Shards = append(st.Shards, o.stats())
		st.add(st.Shards[len(b.shards)])
	}
	st.Unsharded = b.unsharded.Load()
	st.Dropped += st.Unsharded
	st.Discarded += st.Unsharded
	st.Consumed = b.consumed.Load()
	st.Wakeups = b.wakeups.Load()
	return st
}

// stats reads the shard's counters under its switch seqlock, retrying if
// a sub-buffer switch overlapped the read.
func (s *shard) stats() ShardStats {
	for {
		g := s.gen.Load()
		if g&1 == 0 {
			recs, bytes := s.closedRecs.Load(), s.closedBytes.Load()
			end, _, count := unpack(s.subs[s.pubIdx.Load()].pub.Load())
			over := s.overwritten.Load()
			if s.gen.Load() == g {
				drop := s.dropped.Load()
				return ShardStats{
					Records:     recs + uint64(count),
					Bytes:       bytes + uint64(end),
					Dropped:     drop,
					Overwritten: over,
					Discarded:   drop + over,
				}
			}
		}
		// A switch is short and its writer cannot be preempted.
		runtime.Gosched()
	}
}

// Discarded returns stream i's cumulative count of discarded records,
// dropped plus overwritten: its CTF events_discarded once every packet of
// the stream has been read. Stream Shards() is the overflow shard's: the
// records refused on Ps without a shard, and once the overflow shard
// exists, its own losses too. It is exact once writers are quiescent,
// never blocks them and never decreases.
func (b *Buffer) Discarded(i int) uint64 {
	if i < len(b.shards) {
		return b.shards[i].discarded()
	}
	if o := b.over.Load(); o != nil {
		return o.discarded()
	}
	return b.unsharded.Load()
}

// Unsharded returns how many records were dropped because they were
// written on a P without a shard (see [Stats].Unsharded).
func (b *Buffer) Unsharded() uint64 { return b.unsharded.Load() }
