package wasm

import (
	"runtime"
	"testing"
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
