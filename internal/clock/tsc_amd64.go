package clock

const haveTSC = true

// rdtsc returns the CPU's time-stamp counter (tsc_amd64.s).
//
//go:noescape
func rdtsc() int64
