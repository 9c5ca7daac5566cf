//go:build linux && (amd64 || arm64)

package rt

import (
	"fmt"
	"runtime"
	"syscall"
)

// FastThreadID says that ThreadID reads the id from the runtime's M, a
// nanosecond, rather than calling gettid.
const FastThreadID = true

// curM returns the address of the runtime's M (the OS thread) that runs
// the calling goroutine (thread_GOARCH.s).
//
//go:noescape
func curM() uintptr

// mWord returns the eight bytes at offset off of that M.
//
//go:noescape
func mWord(off uintptr) uint64

// threadID returns the low 32 bits of the word at offset procidOff of
// that M: ThreadID without an argument to pass.
//
//go:noescape
func threadID() int32

// procidOff is the offset of the M's thread id, found by checkThreadID
// (and read by threadID).
var procidOff uintptr

// ThreadID returns the kernel's id of the calling thread, what gettid(2)
// returns, from the runtime's M: four loads (the offset, g, g.m and the
// id). The goroutine must stay on
// its thread meanwhile: call it pinned (Pin) or locked (LockOSThread), and
// only once CheckThreadID succeeded.
func ThreadID() int32 { return threadID() }

func checkThreadID() error {
	samples := onThreads(3, func() threadSample {
		s := threadSample{m: curM(), tid: int32(syscall.Gettid())}
		// A nil g.m (a runtime whose g has another layout) is refused
		// by findProcID; reading through it would fault.
		for off := uintptr(0); s.m != 0 && off < mScan; off += 8 {
			s.words = append(s.words, mWord(off))
		}
		runtime.Gosched()
		s.again = curM()
		return s
	})
	off, err := findProcID(samples)
	if err != nil {
		return err
	}
	procidOff = off
	// ThreadID itself, on threads the search did not see.
	for _, ok := range onThreads(2, func() bool {
		tid := int32(syscall.Gettid())
		return ThreadID() == tid && int32(mWord(procidOff)) == tid
	}) {
		if !ok {
			return fmt.Errorf("%w: the thread id read from the runtime's M differs from gettid's (%s)", ErrNoThreadID, runtime.Version())
		}
	}
	return nil
}
