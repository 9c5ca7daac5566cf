package wasm

import (
	"syscall"
	"unsafe"

	"github.com/tracemark/tracemark/internal/rt"
)

// threadClock returns the CPU-time clock of the calling thread, which
// must be locked to its goroutine. Any thread of the process may read it.
// With fast (threadIDsChecked), the thread's id is read from the Go
// runtime (rt.ThreadID, a nanosecond) rather than asked of the kernel
// (gettid, a system call of about 80 ns).
func threadClock(fast bool) (clock uintptr, ok bool) {
	var tid int32
	if fast {
		tid = rt.ThreadID()
	} else {
		tid = int32(syscall.Gettid())
	}
	// The kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED).
	return uintptr((^tid)<<3 | 6), true
}

// threadIDsChecked runs rt.ThreadID's self-check (once) and reports
// whether threadClock may read thread ids from the runtime.
func threadIDsChecked() bool { return rt.CheckThreadID() == nil }

// cpuTime reads a thread's CPU time in nanoseconds, or -1.
func cpuTime(clock uintptr) int64 {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return -1
	}
	return ts.Nano()
}

// hasThreadClock says whether threadClock measures CPU time.
const hasThreadClock = true
