//go:build !amd64

package rt

// HaveTSC reports whether Rdtsc reads a time-stamp counter.
const HaveTSC = false

// Rdtsc returns Nanotime where there is no time-stamp counter to read.
func Rdtsc() int64 { return Nanotime() }
