package marker

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// The grace period: after Unregister returns, no Fire may still be calling
// the probe. Fire announces itself in a reader counter before it loads the
// probe list and withdraws after the last probe returns; Unregister
// publishes the list without the probe, flips the epoch, and waits for the
// readers of the old epoch to drain, like the kernel's SRCU. New readers use
// the new epoch, so a busy marker cannot starve Unregister.
//
// Two implementations share this file's epoch and wait loop:
//
//   - grace_membarrier.go (linux/amd64 without the race detector): per-P
//     counters written with plain stores while the goroutine is pinned to
//     its P, made visible to the waiter by the membarrier system call, as
//     liburcu and LTTng-UST do. About 5 ns per Fire instead of 9.
//   - the portable fallback below: sharded sequentially consistent atomic
//     counters. It is also what the race detector checks.

// epoch is read by every Fire of an enabled marker, on every core: it has
// a cache line of its own, so that a variable written often that the
// linker happens to place beside it does not make those reads miss (in
// one build its neighbours were the runtime's count of goroutines
// waiting on the network poller, written whenever one parks on a socket,
// and the count of goroutines the context package started).
var epoch paddedUint32

// paddedUint32 and paddedUint64 are atomic variables on a cache line of
// their own (their methods are the atomic's): read on every core by hot
// paths, written rarely. The padding is on both sides because the linker
// aligns a variable to 32 bytes at most.
type paddedUint32 struct {
	_ [64]byte
	atomic.Uint32
	_ [64 - 4]byte
}

type paddedUint64 struct {
	_ [64]byte
	atomic.Uint64
	_ [64 - 8]byte
}

// graceMu serialises epoch flips. It is not the registry lock, so a probe
// being cut off after a panic can update the registry while an Unregister
// waits.
var graceMu sync.Mutex

// readToken is what a reader needs to leave its section.
type readToken struct {
	c   *atomic.Int64 // the atomic counter, or nil on the per-P path
	idx uint32
}

const atomicShards = 64 // power of two

type atomicShard struct {
	n [2]atomic.Int64
	_ [64 - 16]byte // one cache line per shard
}

// atomicReaders are the fallback counters. A Fire that read the old epoch
// either incremented its counter before the waiter read it (so the waiter
// waits) or after, in which case its later load of the probe list comes
// after the new list was stored (Go atomics are sequentially consistent).
// The shard is picked from the goroutine's stack address: free to compute,
// stable during one Fire (the counter pointer is kept), and different for
// goroutines running at the same time.
var atomicReaders [atomicShards]atomicShard

func enterAtomic(idx uint32) readToken {
	var local byte
	// A 64-bit Fibonacci hash, also on 32-bit platforms, where the
	// constant does not fit a uintptr.
	h := uint64(uintptr(unsafe.Pointer(&local)) >> 11)
	h = (h * 0x9E3779B97F4A7C15) >> (64 - 6)
	c := &atomicReaders[h&(atomicShards-1)].n[idx]
	c.Add(1)
	return readToken{c: c, idx: idx}
}

func atomicDrained(idx uint32) bool {
	var sum int64
	for i := range atomicReaders {
		sum += atomicReaders[i].n[idx].Load()
	}
	return sum == 0
}

// synchronize waits until every Fire that might have loaded a probe list
// published before the call has finished with it.
//
// It waits twice, as SRCU does. A reader loads the epoch and only then
// counts itself in, so it may be preempted in between and count itself in
// under an index that a flip has meanwhile made inactive. The flip below
// sends new readers to the other index, and the old index is drained; a
// single wait on the old index would miss such a late reader sitting in
// the inactive one (see TestGraceLateReaderInStaleIndex). So the inactive
// index is drained first (only such late readers can be in it, so it
// empties), then the epoch flips, and the old index is drained. Either
// wait reads its counters after the new probe list was published: a
// reader counted in after that read loads the new list.
func synchronize() {
	graceMu.Lock()
	defer graceMu.Unlock()
	cur := epoch.Load() & 1
	waitDrained(cur ^ 1)
	epoch.Add(1)
	waitDrained(cur)
}

// graceWaitHook, when set (by tests only), is called each time a wait
// finds readers still inside.
var graceWaitHook func(idx uint32)

// waitDrained returns when no reader counted under idx is inside.
func waitDrained(idx uint32) {
	for spin := 0; !drained(idx); spin++ {
		if graceWaitHook != nil {
			graceWaitHook(idx)
		}
		// Readers are short; yield first, then back off so that a probe
		// blocked for long does not cost a busy core.
		if spin < 50 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Duration(min(spin, 1000)) * time.Microsecond)
		}
	}
}

// perPReaders (in grace_membarrier.go) holds, per P and per epoch, how
// many readers entered (lock) and left (unlock). The counters only grow and
// are written with plain stores by the pinned goroutine; the waiter reads
// them atomically. A reader may leave on another P than it entered, so one
// P's lock and unlock differ; only the sums mean something.
type perPSlot struct {
	lock, unlock [2]uint64
	_            [64 - 32]byte
}
