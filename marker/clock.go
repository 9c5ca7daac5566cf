package marker

import _ "unsafe" // for go:linkname

// nanotime is the runtime's monotonic clock, the one time.Since uses, read
// without building a time.Time (about 20 ns instead of 37). The runtime
// keeps it available to linkname (go.dev/issue/67401).
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Now returns the monotonic clock that event timestamps use, in
// nanoseconds since an arbitrary origin (CLOCK_MONOTONIC on Linux).
func Now() int64 { return nanotime() }
