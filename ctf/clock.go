package ctf

import "math"

// clockConv converts clock cycles to nanoseconds since the clock origin the
// way Babeltrace 2 does, so that times match its output to the nanosecond:
// the offset is first normalized to whole seconds plus less than one
// second of cycles, then the offset cycles and the timestamp are converted
// separately, each rounded down. For frequencies other than 1 GHz the
// conversion uses double precision (1e9 * cycles / frequency), like
// Babeltrace.
type clockConv struct {
	freq   uint64
	base   int64 // offset in ns
	baseOK bool
}

func newClockConv(c *Clock) clockConv {
	cv := clockConv{freq: c.Frequency}
	if c.Frequency == 0 {
		return cv
	}
	secs, cycles := c.OffsetSeconds, c.Offset
	if cycles >= c.Frequency {
		extra := cycles / c.Frequency
		if extra > math.MaxInt64 {
			return cv
		}
		var ok bool
		if secs, ok = addInt64(secs, int64(extra)); !ok {
			return cv
		}
		cycles -= extra * c.Frequency
	}
	if secs <= math.MinInt64/int64(1e9)-1 || secs >= math.MaxInt64/int64(1e9)-1 {
		return cv
	}
	ns, ok := cv.nsFromCycles(cycles)
	if !ok {
		return cv
	}
	cv.base = secs*1e9 + int64(ns)
	cv.baseOK = true
	return cv
}

// nsFromCycles converts a number of cycles to nanoseconds.
func (c clockConv) nsFromCycles(v uint64) (uint64, bool) {
	if c.freq == 1e9 {
		return v, true
	}
	d := 1e9 * float64(v) / float64(c.freq)
	if d >= math.MaxUint64 {
		return 0, false
	}
	return uint64(d), true
}

// toNS returns the time of a timestamp in nanoseconds since the clock
// origin, and false if it does not fit an int64.
func (c clockConv) toNS(cycles uint64) (int64, bool) {
	if !c.baseOK {
		return 0, false
	}
	v, ok := c.nsFromCycles(cycles)
	if !ok || v >= math.MaxInt64 {
		return 0, false
	}
	if c.base > 0 && int64(v) > math.MaxInt64-c.base {
		return 0, false
	}
	return c.base + int64(v), true
}

func addInt64(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
