//go:build !unix

package main

// monoOffset: host-wide tracing reads /proc, and there is none here; the
// base of its clock is 0.
func monoOffset() int64 { return 0 }
