// Package ring implements sharded, lock-free event buffers for tracing
// sessions, in the spirit of LTTng's per-CPU ring buffers.
//
// # Shards: one per P, via procPin
//
// Go has no per-CPU data, but it has per-P execution: at any instant at most
// one goroutine runs on a given P. [Buffer.Reserve] calls the runtime's
// procPin (rt.Pin, package internal/rt), which disables preemption and
// returns the P's id; [Buffer.Commit] calls procUnpin. A caller that is already pinned, such as
// a session's probe, uses [Buffer.ReservePinned] and [Buffer.CommitPinned]
// instead and saves the second pin. Between the two the goroutine can neither
// be preempted nor migrate, so it is the only writer of shard[pid]. The
// writer's bookkeeping (offset, record count) is therefore plain memory,
// with no atomic read-modify-write and no contention between Ps; only
// publication to the reader uses an atomic store. This is also why the
// pinned section must stay short: no blocking, no allocation, no channel or
// lock operations, no user callbacks, no nested Reserve. A pinned goroutine
// that parks makes the runtime abort ("schedule: holding locks"); a long
// pinned section delays garbage collection. The reader pins itself too, but
// only while it holds sub-buffers without running user code (see below).
//
// The race detector cannot see that pinning serialises the goroutines of one
// P, so race-enabled builds annotate Reserve/Commit as acquiring and
// releasing a sync object per shard (race_on.go). The reader never takes
// it, so all writer/reader sharing is still checked.
//
// A Buffer has GOMAXPROCS shards, fixed at [New]: since Go 1.25 GOMAXPROCS
// follows the container's CPU limit, so a process limited to 2 CPUs on a
// 128-CPU node gets 2 shards, not 128. GOMAXPROCS may be raised later (by
// the program, or by the runtime when the limit changes). Records written
// on a P with an id not below the shard count go to one overflow shard,
// stream number Shards(), which such writers share: each holds a spin lock
// on it from Reserve to Commit (pinned, so the holder is never preempted
// and the wait lasts one record at most). The overflow shard's memory is
// allocated on demand by [Buffer.AllocOverflow], called by someone who is
// not pinned (a session's recorder unpins to do it); until then such
// records are dropped and counted in [Stats].Unsharded, and the overflow
// shard's packets count them in their Discarded.
//
// # Sub-buffers and the ownership state machine
//
// Each shard is a ring of Config.SubBufCount sub-buffers of
// Config.SubBufSize bytes. A sub-buffer is one future CTF packet: records
// back to back, no header. The writer appends to its current sub-buffer;
// when a record does not fit, it seals the sub-buffer (nothing more goes in,
// even a smaller record) and switches to the next one in ring order, whose
// sequence number is one more than the previous one's.
//
// Ownership is arbitrated by an atomic state word per sub-buffer:
//
//	free --claim--> claimed --publish--> writing --close--> full --free--> free
//	                   ^                                      |
//	                   +---------- claim (overwrite mode) ----+
//
// plus a reader flag R that the reader sets with a CAS on a writing or full
// sub-buffer for as long as it copies bytes out of it. Transitions:
//
//   - claim (writer): CAS free→claimed, or in overwrite mode full→claimed.
//     The CAS fails if R is set, so the writer never reuses bytes the
//     reader is copying; the record is dropped instead.
//   - publish (writer): plain writes reset the sub-buffer's bookkeeping
//     while claimed (the reader ignores claimed sub-buffers), then a store
//     of writing makes them visible.
//   - close (writer): writing→full, keeping R. The writer no longer touches
//     a full sub-buffer's bytes, so the reader may keep copying.
//   - free (reader): full|R→free once every record has been emitted.
//
// While writing, each Commit stores one 64-bit word holding the committed
// length, the offset of the last record and the record count. The reader
// loads it and may read that prefix while the writer appends after it: the
// bytes are disjoint and the store/load pair orders them. So Drain needs no
// "switch requested" handshake to see the records of an idle shard.
//
// Record timestamps are read by the reader from the records themselves
// (Config.TimestampOffset), which gives a packet's begin and end timestamps
// without any extra writer work. Callers take timestamps while pinned, so
// they are non-decreasing within a shard.
//
// # Reading
//
// One reader at a time (a mutex serialises [Buffer.Drain] and
// [Buffer.Snapshot]) visits the shards in turn. For each shard it first
// locks, while pinned, every writing or full sub-buffer and reads their
// sequence numbers, retrying if a switch overlapped (a per-shard switch
// counter tells): the locked set is then what the shard held at one
// instant, so a sub-buffer claimed later always has a higher sequence
// number and output stays in Seq order across calls.
//
// Drain then unlocks them all and drains them oldest first, re-locking one
// at a time (and skipping one whose Seq changed: reclaimed, it now holds
// newer data for the next Drain). Packets alias the ring, so a sub-buffer
// stays locked while emit runs. A full sub-buffer is freed once emitted; the
// current one keeps a consumed offset, and its later records come out of a
// later Drain as a packet with the same Seq and a larger Offset.
//
// Snapshot unlocks them too, then copies them newest first into a buffer
// the reader owns, 64 KiB at a time: each chunk is copied pinned, with the
// reader flag set and the Seq checked again, so neither a writer nor the
// garbage collector's stop-the-world waits for more than one chunk. An
// overwrite-mode writer may reclaim sub-buffers between two chunks, oldest
// first; the first one found reclaimed ends the copy, so a shard's snapshot
// is the newest consecutive run of what it held, and is emitted oldest
// first.
//
// # Waking the reader
//
// A reader that has drained everything calls [Buffer.Wait], which parks
// it until a writer closes a sub-buffer, or until a fallback timeout for
// quiet buffers. The writer's side runs on the switch path only: a load
// of the reader's sleeping flag, and while the reader sleeps one CAS and
// one non-blocking send on a 1-buffered channel. The handshake that makes
// a lost wake-up impossible is described in wake.go.
//
// # Discard and overwrite
//
// In discard mode (the default) the writer only claims free sub-buffers;
// when the next one is still full the record is dropped, so the ring keeps
// the oldest data and Drain sees, per shard, an unbroken sequence. In
// overwrite mode ([Config.Overwrite]) the writer claims the next sub-buffer even if it is full, counting its
// unconsumed records as overwritten, so the ring keeps the most recent data
// and [Buffer.Snapshot] acts as a flight recorder. In both modes a
// sub-buffer the reader is copying is never reclaimed.
//
// # Counters
//
// Every counter is exact, not sampled: drops are counted with an atomic add
// when they happen, committed records and bytes are the sum of closed
// sub-buffers (updated at each switch) plus the current sub-buffer's
// published word, and overwritten records are counted when their sub-buffer
// is reclaimed. Once writers are quiescent, Records+Dropped equals the
// number of Reserve calls and Consumed+Overwritten+held equals Records.
//
// # Cost
//
// The fast path is procPin, a bounds check, slicing, three plain stores, one
// release store and procUnpin: no locked instruction on amd64, where a plain
// store has release ordering, and no allocation. A switch costs about ten atomic operations, amortised over a
// sub-buffer of records; a dropped record costs one atomic add. A record
// in the overflow shard also takes and releases its lock (a CAS and a
// store), and waits while another P holds it.
package ring
