// Package pin pins the calling goroutine to its P (the scheduler's
// processor), the closest Go has to the kernel's preempt_disable: while
// pinned, a goroutine is neither preempted nor moved, so it is the only one
// running on that P and may use per-P data without atomics.
//
// A pinned goroutine must not block, allocate, panic or run for long: the
// runtime aborts the program if a pinned goroutine parks or panics, and
// stop-the-world waits for it. The runtime keeps these functions available
// to go:linkname (go.dev/issue/67401).
package pin

import _ "unsafe" // for go:linkname

// Pin disables preemption of the calling goroutine and returns the id of
// its P, in [0, GOMAXPROCS). Pins nest; each needs an Unpin.
//
//go:linkname Pin runtime.procPin
func Pin() int

// Unpin undoes one Pin.
//
//go:linkname Unpin runtime.procUnpin
func Unpin()
