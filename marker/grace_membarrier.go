//go:build linux && amd64 && !race

package marker

import (
	"sync/atomic"
	"syscall"
	_ "unsafe" // for go:linkname
)

// The runtime keeps P pinning available to linkname (go.dev/issue/67401).
// While pinned, a goroutine cannot be preempted or migrate, so it is the
// only writer of its P's counters.

//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

const (
	sysMembarrier                  = 324
	membarrierCmdQuery             = 0
	membarrierPrivateExpedited     = 1 << 3
	membarrierRegisterPrivateExped = 1 << 4
)

const maxPinnedPs = 256

var perPReaders [maxPinnedPs]perPSlot

// fastRead is decided once at start-up: membarrier must be available.
var fastRead = registerMembarrier()

func registerMembarrier() bool {
	mask, _, errno := syscall.RawSyscall(sysMembarrier, membarrierCmdQuery, 0, 0)
	if errno != 0 || mask&membarrierPrivateExpedited == 0 {
		return false
	}
	_, _, errno = syscall.RawSyscall(sysMembarrier, membarrierRegisterPrivateExped, 0, 0)
	return errno == 0
}

// membarrier makes every thread of the process execute a full memory
// barrier, so that the plain counter stores of readers running right now
// become visible to the waiter (the asymmetric half of a Dekker handshake
// whose reader half is free).
func membarrier() {
	if _, _, errno := syscall.Syscall(sysMembarrier, membarrierPrivateExpedited, 0, 0); errno != 0 {
		panic("marker: membarrier failed after successful registration: " + errno.Error())
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
	pid := procPin()
	if pid >= maxPinnedPs {
		procUnpin()
		return enterAtomic(idx)
	}
	perPReaders[pid].lock[idx]++
	procUnpin()
	return readToken{idx: idx}
}

func exitRead(t readToken) {
	if t.c != nil {
		t.c.Add(-1)
		return
	}
	pid := procPin()
	if pid >= maxPinnedPs {
		// The reader entered on a P below the limit but leaves on one above
		// it (GOMAXPROCS was raised meanwhile): count the exit on P 0's
		// slot atomically; sums stay right.
		procUnpin()
		atomic.AddUint64(&perPReaders[0].unlock[t.idx], 1)
		return
	}
	perPReaders[pid].unlock[t.idx]++
	procUnpin()
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
