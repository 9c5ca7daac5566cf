// Package clock is the timestamp source of recording sessions.
//
// Every recorded event needs a timestamp, and reading the clock is most of
// the cost of recording one: runtime.nanotime (the vDSO's
// clock_gettime(CLOCK_MONOTONIC)) takes about 20 ns, the CPU's time-stamp
// counter about 8. Where the TSC is invariant and the kernel itself uses it
// as its clocksource (so it is synchronised across CPUs), Now reads the TSC
// and converts it to CLOCK_MONOTONIC nanoseconds with a multiply and a
// shift, like the kernel's clocksource code. The conversion is calibrated
// once per process against runtime.nanotime (Calibrate, about 50 ms).
// Everywhere else, and before calibration, Now is runtime.nanotime.
//
// Setting TRACEMARK_CLOCK=monotonic in the environment forces
// runtime.nanotime.
package clock

import (
	"math/bits"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	_ "unsafe" // for go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// conversion maps TSC ticks to nanoseconds: ns = base + (ticks-t0)*mult>>shift.
type conversion struct {
	t0, base int64
	mult     uint64
	shift    uint
}

var (
	conv atomic.Pointer[conversion]
	once sync.Once
)

// Now returns CLOCK_MONOTONIC time in nanoseconds.
func Now() int64 {
	if c := conv.Load(); c != nil {
		return c.nanos(rdtsc())
	}
	return nanotime()
}

// Ticks returns the clock in its raw unit, for recording now and converting
// later with ToNanos: TSC ticks once Calibrate chose the TSC, nanoseconds
// otherwise. It saves Now's conversion (about 2 ns) on the recording path.
// Readings taken before Calibrate returns cannot be converted.
func Ticks() int64 {
	if conv.Load() != nil {
		return rdtsc()
	}
	return nanotime()
}

// ToNanos converts a Ticks reading taken after Calibrate returned to Now's
// nanoseconds, exactly as Now would have at that instant.
func ToNanos(t int64) int64 {
	if c := conv.Load(); c != nil {
		return c.nanos(t)
	}
	return t
}

func (c *conversion) nanos(ticks int64) int64 {
	hi, lo := bits.Mul64(uint64(ticks-c.t0), c.mult)
	return c.base + int64(hi<<(64-c.shift)|lo>>c.shift)
}

// Source returns "tsc" or "monotonic": what Now reads.
func Source() string {
	if conv.Load() != nil {
		return "tsc"
	}
	return "monotonic"
}

// Calibrate switches Now to the TSC if it is usable, measuring its
// frequency first. It runs once per process; later calls return at once.
// Call it before taking timestamps that must be comparable (a session
// calls it when it is created).
func Calibrate() {
	once.Do(func() {
		if !tscUsable() || os.Getenv("TRACEMARK_CLOCK") == "monotonic" {
			return
		}
		if c, ok := calibrate(); ok {
			conv.Store(c)
		}
	})
}

// tscUsable reports whether the kernel trusts the TSC: its clocksource is
// the TSC and the CPU says the counter is invariant.
func tscUsable() bool {
	if !haveTSC {
		return false
	}
	cs, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	if err != nil || strings.TrimSpace(string(cs)) != "tsc" {
		return false
	}
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	flags := string(info)
	return strings.Contains(flags, " constant_tsc") && strings.Contains(flags, " nonstop_tsc")
}

// sample reads the TSC between two nanotime reads and keeps the pair whose
// reads were closest together, so the pair's error is at most half that
// gap.
func sample() (ticks, ns int64) {
	best := int64(1 << 62)
	for range 32 {
		n1 := nanotime()
		t := rdtsc()
		n2 := nanotime()
		if gap := n2 - n1; gap < best {
			best, ticks, ns = gap, t, n1+gap/2
		}
	}
	return ticks, ns
}

const calibrationNs = 50_000_000

func calibrate() (*conversion, bool) {
	t0, n0 := sample()
	for nanotime()-n0 < calibrationNs {
	}
	t1, n1 := sample()
	if t1 <= t0 || n1 <= n0 {
		return nil, false
	}
	// mult/2^shift = ns per tick. A shift of 32 keeps 32 bits of precision
	// for tick rates from 100 MHz to 10 GHz.
	const shift = 32
	mult := uint64((float64(n1-n0) / float64(t1-t0)) * (1 << shift))
	return &conversion{t0: t1, base: n1, mult: mult, shift: shift}, true
}
