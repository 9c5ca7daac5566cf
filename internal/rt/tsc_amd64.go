package rt

// HaveTSC reports whether Rdtsc reads a time-stamp counter.
const HaveTSC = true

// Rdtsc returns the CPU's time-stamp counter (tsc_amd64.s). Whether it is
// a usable clock (invariant, synchronised across CPUs) is for the caller to
// find out; internal/clock does.
//
//go:noescape
func Rdtsc() int64
