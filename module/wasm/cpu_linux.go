package wasm

import (
	"syscall"
	"unsafe"
)

// threadClock returns the CPU-time clock of the calling thread, which
// must be locked to its goroutine. Any thread of the process may read it.
func threadClock() (clock uintptr, ok bool) {
	// The kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED).
	return uintptr((^int32(syscall.Gettid()))<<3 | 6), true
}

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
