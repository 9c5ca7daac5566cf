//go:build !unix || netbsd

package main

// monoOffset: host-wide tracing reads /proc, and there is none here (nor
// a CLOCK_REALTIME in x/sys/unix for NetBSD); the base of its clock is 0.
func monoOffset() int64 { return 0 }
