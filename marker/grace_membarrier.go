//go:build linux && amd64 && !race

package marker

import (
	"sync/atomic"

	"github.com/tracemark/tracemark/internal/rt"
)

// A reader pins its goroutine to its P (rt.Pin) while it counts: pinned, a
// goroutine cannot be preempted or migrate, so it is the only writer of its
// P's counters.

const maxPinnedPs = 256

var perPReaders [maxPinnedPs]perPSlot

// fastRead is decided once at start-up: membarrier must be available.
var fastRead = rt.RegisterMembarrier()

// membarrier makes every thread of the process execute a full memory
// barrier, so that the plain counter stores of readers running right now
// become visible to the waiter (the asymmetric half of a Dekker handshake
// whose reader half is free).
func membarrier() {
	if err := rt.Membarrier(); err != nil {
		panic("marker: membarrier failed after successful registration: " + err.Error())
	}
}

func enterRead() readToken {
	idx := epoch.Load() & 1
	if widenGraceWindow {
		graceWindow()
	}
	if !fastRead {
		return enterAtomic(idx)
	}
	pid := rt.Pin()
	if pid >= maxPinnedPs {
		rt.Unpin()
		return enterAtomic(idx)
	}
	perPReaders[pid].lock[idx]++
	rt.Unpin()
	return readToken{idx: idx}
}

func exitRead(t readToken) {
	if t.c != nil {
		t.c.Add(-1)
		return
	}
	pid := rt.Pin()
	if pid >= maxPinnedPs {
		// The reader entered on a P below the limit but leaves on one above
		// it (GOMAXPROCS was raised meanwhile): count the exit on P 0's
		// slot atomically; sums stay right.
		rt.Unpin()
		atomic.AddUint64(&perPReaders[0].unlock[t.idx], 1)
		return
	}
	perPReaders[pid].unlock[t.idx]++
	rt.Unpin()
}

// drained is SRCU's check: sum the unlocks, make every reader's stores
// visible, then sum the locks. A reader counted in the unlocks entered
// before, so its lock is counted too; equality means no reader of this
// epoch is inside.
func drained(idx uint32) bool {
	if !atomicDrained(idx) {
		return false
	}
	if !fastRead {
		return true
	}
	var unlocks, locks uint64
	for i := range perPReaders {
		unlocks += atomic.LoadUint64(&perPReaders[i].unlock[idx])
	}
	membarrier()
	for i := range perPReaders {
		locks += atomic.LoadUint64(&perPReaders[i].lock[idx])
	}
	return locks == unlocks
}
