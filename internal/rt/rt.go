// Package rt holds every coupling of this module to the Go runtime, the
// CPU and the kernel that the standard library does not offer: pinning a
// goroutine to its P and the runtime's monotonic clock (both go:linkname
// into package runtime), the CPU's time-stamp counter (assembly), the
// membarrier system call, and the calling thread's id read from the
// runtime's M (assembly: g.m, at the offset the toolchain knows, then the
// M's procid, whose offset a self-check finds and verifies at first use). Each is defined here once; every package that
// needs one (marker, internal/ring, internal/clock, session) calls it here,
// so that a change of the runtime or a new port touches one package.
//
// The runtime keeps procPin, procUnpin and nanotime available to the
// linkname directive (go.dev/issue/67401). A call to Pin, Unpin or
// Nanotime from another package compiles to a direct call of the runtime
// function, as a linkname in the calling package would.
package rt

import _ "unsafe" // for go:linkname

// Pin disables preemption of the calling goroutine and returns the id of
// its P (the scheduler's processor), in [0, GOMAXPROCS). It is the closest
// Go has to the kernel's preempt_disable: while pinned, a goroutine is
// neither preempted nor moved, so it is the only one running on that P and
// may use per-P data without atomics. Pins nest; each needs an Unpin.
//
// A pinned goroutine must not block, allocate, panic or run for long: the
// runtime aborts the program if a pinned goroutine parks or panics, and
// stop-the-world waits for it.
//
//go:linkname Pin runtime.procPin
func Pin() int

// Unpin undoes one Pin.
//
//go:linkname Unpin runtime.procUnpin
func Unpin()

// Nanotime is the runtime's monotonic clock, the one time.Since uses
// (CLOCK_MONOTONIC on Linux, read through the vDSO), in nanoseconds since
// an arbitrary origin. It is read without building a time.Time: about
// 20 ns instead of 37.
//
//go:linkname Nanotime runtime.nanotime
func Nanotime() int64
