package marker

import "github.com/tracemark/tracemark/internal/rt"

// Now returns the monotonic clock that event timestamps use, in
// nanoseconds since an arbitrary origin (CLOCK_MONOTONIC on Linux). It is
// the runtime's clock, the one time.Since uses, read without building a
// time.Time (about 20 ns instead of 37).
func Now() int64 { return rt.Nanotime() }
