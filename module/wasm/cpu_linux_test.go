package wasm

import (
	"runtime"
	"syscall"
	"testing"
	"unsafe"
)

// TestThreadClock: the clock that threadClock makes from the runtime's
// thread id is the one that gettid's names, and it measures the calling
// thread's CPU time.
func TestThreadClock(t *testing.T) {
	if !threadIDsChecked() {
		t.Skip("the runtime's thread ids cannot be read here")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fast, _ := threadClock(true)
	slow, _ := threadClock(false)
	if fast != slow {
		t.Fatalf("clock %#x from the runtime's thread id, %#x from gettid", fast, slow)
	}
	before := cpuTime(fast)
	x := uint64(1)
	for cpuTime(fast) < before+int64(2e6) { // 2 ms of this thread's CPU time
		for range 100000 {
			x = x*6364136223846793005 + 1
		}
	}
	if before < 0 || x == 0 {
		t.Fatalf("cpuTime: %d", before)
	}
}

// threadCPU returns the CPU time of the calling thread, in ns, or -1. The
// goroutine must be locked to its thread. Unlike processCPU it is exact
// at any moment: the kernel brings the calling thread's count up to date
// when it is read, the other threads' only at their next tick or switch.
func threadCPU() int64 {
	var ts syscall.Timespec
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return -1
	}
	return ts.Nano()
}
