package rt

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// ErrNoThreadID is wrapped by the error of CheckThreadID: ThreadID cannot
// be trusted in this program.
var ErrNoThreadID = errors.New("thread ids not available")

// CheckThreadID reports whether ThreadID returns the kernel's id of the
// calling thread in this program: nil if so, an error wrapping
// ErrNoThreadID that says why not otherwise. It runs its self-check once,
// on first use (see findProcID); call it before the first ThreadID.
func CheckThreadID() error { return threadIDCheck() }

var threadIDCheck = sync.OnceValue(checkThreadID)

// mScan is how much of the runtime's M the self-check searches for the
// thread id: its first fields (procid is the fourth, after g0, morebuf and
// divmod, at 64 bytes on 64-bit ports in Go 1.26).
const mScan = 256

// threadSample is what the self-check saw on one thread, with the calling
// goroutine locked to it.
type threadSample struct {
	m, again uintptr  // the M's address, read twice with a Gosched between
	tid      int32    // gettid(2)
	words    []uint64 // the first mScan bytes of the M
}

// findProcID returns the offset in the runtime's M of the field that holds
// its thread's id (procid, which the runtime sets from gettid when the
// thread starts, for signals and debuggers), from samples taken on distinct
// threads at once: each M must stay the M of its thread, the Ms and the
// thread ids must differ, and the offset must hold its thread's id in every
// sample. It fails if the runtime's layout is not the one this package
// knows, so that a change of the runtime makes thread ids refuse rather
// than read something else.
func findProcID(samples []threadSample) (uintptr, error) {
	if len(samples) < 2 {
		return 0, fmt.Errorf("%w: the self-check needs two threads, has %d", ErrNoThreadID, len(samples))
	}
	for i, s := range samples {
		if s.m == 0 || s.m != s.again {
			return 0, fmt.Errorf("%w: the runtime's M of a locked thread is %#x, then %#x: not the layout of runtime.g this program knows (%s)",
				ErrNoThreadID, s.m, s.again, runtime.Version())
		}
		for _, o := range samples[:i] {
			if o.m == s.m || o.tid == s.tid {
				return 0, fmt.Errorf("%w: two threads share M %#x or thread id %d: not the layout of runtime.g this program knows (%s)",
					ErrNoThreadID, s.m, s.tid, runtime.Version())
			}
		}
	}
next:
	for w := range mScan / 8 {
		for _, s := range samples {
			if w >= len(s.words) || s.words[w] != uint64(uint32(s.tid)) {
				continue next
			}
		}
		return uintptr(w * 8), nil
	}
	return 0, fmt.Errorf("%w: no field of the runtime's M holds its thread's id: not the layout of runtime.m this program knows (%s)",
		ErrNoThreadID, runtime.Version())
}

// onThreads runs fn on n goroutines at once, each locked to its own OS
// thread for the whole time (all are locked before any unlocks, so the
// threads are distinct), and returns what they return.
func onThreads[T any](n int, fn func() T) []T {
	out := make([]T, n)
	var locked, done sync.WaitGroup
	release := make(chan struct{})
	locked.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			out[i] = fn()
			locked.Done()
			<-release // hold the thread until every goroutine has one
		}()
	}
	locked.Wait()
	close(release)
	done.Wait()
	return out
}
