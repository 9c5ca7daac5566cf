// Package clock is the timestamp source of recording sessions.
//
// Every recorded event needs a timestamp, and reading the clock is most of
// the cost of recording one: runtime.nanotime (the vDSO's
// clock_gettime(CLOCK_MONOTONIC)) takes about 20 ns, the CPU's time-stamp
// counter about 8. Where the TSC is invariant and the kernel itself uses it
// as its clocksource (so it is synchronised across CPUs), Now reads the TSC
// and converts it to CLOCK_MONOTONIC nanoseconds with a multiply and a
// shift, like the kernel's clocksource code. Everywhere else, and before
// Calibrate, Now is runtime.nanotime.
//
// # Segments and anchors
//
// The conversion is a continuous, increasing, piecewise-linear map of
// ticks to nanoseconds. Each piece (a segment) starts at a tick where a
// tight (TSC, nanotime) pair, an anchor, was taken; its rate is the
// reference's rate measured over the recent anchors, corrected so that the
// offset measured at the anchor is absorbed by the next one, the way the
// kernel's timekeeping slews towards NTP. Pieces join without a step, so
// converted times never go back. A segment is never changed once a tick
// at or after its start may have been converted: new segments start after
// every tick converted so far, and a tick converts with the segment it was
// taken in, however late it is converted.
//
// Calibrate only takes a coarse first segment (about 25 µs); a background
// goroutine refines it over the next second. After that, any conversion
// (ToNanos, Now) of a tick more than five milliseconds past the newest
// anchor takes a new anchor first, so a reader that converts records as it
// drains them keeps the map within microseconds of CLOCK_MONOTONIC, however
// long it records and however NTP slews; while Hold is held (by recording
// sessions) a goroutine anchors every 100 ms too, for records nobody
// converts until much later. docs/design.md gives the error bound.
//
// Setting TRACEMARK_CLOCK=monotonic in the environment forces
// runtime.nanotime.
package clock

import (
	"math"
	"math/bits"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracemark/tracemark/internal/rt"
)

// std is the process's clock.
var std = clk{readTSC: rt.Rdtsc, readMono: rt.Nanotime}

var once sync.Once

// Now returns CLOCK_MONOTONIC time in nanoseconds.
func Now() int64 { return std.now() }

// now is Now for clock c. It converts again if a table was published
// while it converted (see publish): a goroutine descheduled between
// loading the table and reading the TSC would otherwise convert a tick
// of the new segment with the old one's rate, and the next Now could
// return less.
func (c *clk) now() int64 {
	for {
		v := c.seq.Load()
		tb := c.tab.Load()
		if tb == nil {
			return c.readMono()
		}
		t := c.readTSC()
		var ns int64
		if d := t - tb.cur.start; d >= 0 && t <= tb.limit {
			hi, lo := bits.Mul64(uint64(d), tb.cur.mult)
			ns = tb.cur.base + int64(hi<<(64-shift)|lo>>shift)
		} else {
			ns = c.slow(tb, t)
		}
		if v&1 == 0 && c.seq.Load() == v {
			return ns
		}
	}
}

// Ticks returns the clock in its raw unit, for recording now and converting
// later with ToNanos: TSC ticks once Calibrate chose the TSC, nanoseconds
// otherwise. It saves Now's conversion (about 2 ns) on the recording path.
// Readings taken before Calibrate returns cannot be converted.
func Ticks() int64 {
	if std.tab.Load() != nil {
		return rt.Rdtsc()
	}
	return rt.Nanotime()
}

// ToNanos converts a Ticks reading taken after Calibrate returned to Now's
// nanoseconds, exactly as Now would have at that instant, however long ago
// the reading was taken.
func ToNanos(t int64) int64 { return std.toNanos(t) }

// toNanos is ToNanos for clock c. Like now, it converts again if a table
// was published meanwhile: a tick of the segment being published must
// not convert with the table before it once that segment is in use.
func (c *clk) toNanos(t int64) int64 {
	for {
		v := c.seq.Load()
		tb := c.tab.Load()
		if tb == nil {
			return t
		}
		var ns int64
		// segment.nanos for t in [start, limit], without its call.
		if d := t - tb.cur.start; d >= 0 && t <= tb.limit {
			hi, lo := bits.Mul64(uint64(d), tb.cur.mult)
			ns = tb.cur.base + int64(hi<<(64-shift)|lo>>shift)
		} else {
			ns = c.slow(tb, t)
		}
		if v&1 == 0 && c.seq.Load() == v {
			return ns
		}
	}
}

// Source returns "tsc" or "monotonic": what Now reads.
func Source() string {
	if std.tab.Load() != nil {
		return "tsc"
	}
	return "monotonic"
}

// Calibrate switches Now to the TSC if it is usable. It runs once per
// process and takes about 25 µs; the calibration is refined in the
// background. Call it before taking timestamps that must be comparable (a
// session calls it when it is created).
func Calibrate() {
	once.Do(func() {
		if !tscUsable() || os.Getenv("TRACEMARK_CLOCK") == "monotonic" {
			return
		}
		if std.coarse() {
			go std.refine()
		}
	})
}

// tscUsable reports whether the kernel trusts the TSC: its clocksource is
// the TSC and the CPU says the counter is invariant.
func tscUsable() bool {
	if !rt.HaveTSC {
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

// shift is the fixed point of segment rates: mult/2^shift is nanoseconds
// per tick, 32 bits of precision for tick rates from 100 MHz to 10 GHz.
const shift = 32

// segment maps ticks from start on: ns = base + (t-start)*mult>>shift,
// with t-start signed, so that ticks before start extrapolate backwards.
type segment struct {
	start, base int64
	mult        uint64
}

func (s *segment) nanos(t int64) int64 {
	d := t - s.start
	if d >= 0 {
		hi, lo := bits.Mul64(uint64(d), s.mult)
		return s.base + int64(hi<<(64-shift)|lo>>shift)
	}
	// Before start (a tick read before its anchor): rounded down too.
	hi, lo := bits.Mul64(uint64(-d), s.mult)
	q := int64(hi<<(64-shift) | lo>>shift)
	if lo<<(64-shift) != 0 {
		q++
	}
	return s.base - q
}

// table is one published state of the map. It is never modified; the
// anchor publishes a new one.
type table struct {
	cur   segment   // the newest segment, for ticks >= cur.start
	limit int64     // converting a tick past limit takes a new anchor first
	segs  []segment // every retained segment by start, cur last
}

func (tb *table) nanos(t int64) int64 {
	if t >= tb.cur.start {
		return tb.cur.nanos(t)
	}
	segs := tb.segs
	// Ticks taken just before the newest anchor are the common case.
	if i := len(segs) - 2; i >= 0 && t >= segs[i].start {
		return segs[i].nanos(t)
	}
	lo, hi := 0, len(segs)-1 // the last segment starting at or before t, or the first
	for lo < hi {
		if m := int(uint(lo+hi+1) >> 1); segs[m].start <= t {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return segs[lo].nanos(t)
}

// The anchoring parameters, in nanoseconds of the reference.
const (
	// anchorEvery is how stale the newest anchor may be when a tick after
	// it is converted. NTP slews CLOCK_MONOTONIC by at most 500 ppm, so a
	// sudden change of slew costs 2.5 µs per 5 ms before it is measured.
	anchorEvery = 5_000_000
	// anchorAhead is how far after its anchor a segment starts, so that a
	// conversion that loaded the previous table before the new one was
	// published still converts with the segment its tick belongs to.
	anchorAhead = 20_000
	// retryAfter is how long conversions past the limit wait before they
	// anchor again once an anchor gave up (the background anchoring goes
	// on meanwhile).
	retryAfter = anchorEvery / 16
	// rateBaseline is the shortest span of anchors the rate is measured
	// over, once there is one: pairs are accurate to about 20 ns, so the
	// rate is good to 0.04 ppm.
	rateBaseline = 1_000_000_000
	// gentle is the offset below which the offset is absorbed slowly
	// (over a horizon that grows as the offset shrinks), so that the
	// noise of the pairs does not wiggle the rate; above it, over twice
	// the time since the previous anchor.
	gentle = 1_000
	// maxHorizon bounds that horizon.
	maxHorizon = 10_000_000_000
	// stepAhead is the lag behind the reference beyond which the map
	// steps forward instead of slewing (only after the process was
	// stopped or suspended for that long).
	stepAhead = 1_000_000
	// coarseSpan is the span of the coarse calibration in Calibrate.
	coarseSpan = 20_000
	// maxSegments bounds the retained segments (32 bytes each); beyond
	// it, the older ones are thinned out.
	maxSegments = 1 << 14
	// keepSegments is how many of the newest segments thinning keeps.
	keepSegments = 1 << 10
	// npairs is the number of recent anchors kept to measure the rate.
	npairs = 256
)

// refineAt are the delays after Calibrate at which the background
// goroutine re-anchors, each measuring the rate over a longer span.
var refineAt = []time.Duration{
	time.Millisecond, 4 * time.Millisecond, 16 * time.Millisecond, 64 * time.Millisecond,
	256 * time.Millisecond, 1024 * time.Millisecond,
}

// pair is a TSC reading and the reference reading taken with it.
type pair struct{ tsc, mono int64 }

// clk is a clock: the map and what maintains it. Its sources are the TSC
// and runtime.nanotime for std, simulations in tests.
type clk struct {
	tab atomic.Pointer[table]
	// seq is odd while publish may store a table, and counts the
	// publications: a conversion that saw it odd, or changed, runs again.
	seq atomic.Uint64
	// retry is the tick before which a conversion past the limit does not
	// anchor: set when anchorLocked gave up, so that conversions do not
	// each take nine refused anchors while the machine is too slow.
	retry atomic.Int64

	readTSC, readMono func() int64
	refineHook        func() // tests: runs before the background refinement
	publishHook       func() // tests: runs in publish, between its check and its store

	mu    sync.Mutex // anchoring
	pairs [npairs]pair
	npair int // pairs taken; the newest is pairs[(npair-1)%npairs]

	holdMu  sync.Mutex
	holders int
	stop    chan struct{} // closed when the last holder releases
	// heldTicks and heldDone replace the anchoring goroutine's ticker and
	// report its end, for tests.
	heldTicks func() (<-chan time.Time, func())
	heldDone  func()
}

// slow converts t when it is not in the newest segment's fast range, and
// takes a new anchor first when t is past the limit. The anchor does not
// change t's conversion: the new segment starts after t.
func (c *clk) slow(tb *table, t int64) int64 {
	if t > tb.limit && t >= c.retry.Load() && c.mu.TryLock() {
		if c.tab.Load() == tb {
			c.anchorLocked()
		}
		c.mu.Unlock()
	}
	return tb.nanos(t)
}

// sample reads the TSC between two reference reads and keeps the pair
// whose reads were closest together, so the pair's error is at most half
// that gap.
func (c *clk) sample() pair {
	var p pair
	best := int64(math.MaxInt64)
	for range 32 {
		n1 := c.readMono()
		t := c.readTSC()
		n2 := c.readMono()
		if gap := n2 - n1; gap < best {
			best, p = gap, pair{t, n1 + gap/2}
		}
	}
	return p
}

func (c *clk) addPair(p pair) {
	c.pairs[c.npair%npairs] = p
	c.npair++
}

// coarse publishes the first segment, measured over coarseSpan. It reports
// false if the TSC does not advance.
func (c *clk) coarse() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p0 := c.sample()
	for c.readMono()-p0.mono < coarseSpan {
	}
	p1 := c.sample()
	if p1.tsc <= p0.tsc || p1.mono <= p0.mono {
		return false
	}
	c.addPair(p0)
	c.addPair(p1)
	rate := float64(p1.mono-p0.mono) / float64(p1.tsc-p0.tsc)
	s := segment{start: p1.tsc, base: p1.mono, mult: uint64(rate * (1 << shift))}
	c.tab.Store(&table{cur: s, limit: s.start + int64(anchorEvery/rate), segs: []segment{s}})
	return true
}

// refine re-anchors at the refineAt delays after Calibrate.
func (c *clk) refine() {
	if c.refineHook != nil {
		c.refineHook()
	}
	start := time.Now()
	for _, d := range refineAt {
		time.Sleep(d - time.Since(start))
		c.Anchor()
	}
}

// Hold keeps the clock anchored while held, at least every holdEvery,
// from a goroutine that runs while there are holders. Sessions hold it
// while they record, so that records nobody converts for a long time (an
// overwrite session waiting for its snapshot, in a process that converts
// nothing else) still have an anchor near them. Release is idempotent.
func Hold() (release func()) { return std.hold() }

// holdEvery is the cadence of the anchoring goroutine.
const holdEvery = 100 * time.Millisecond

func (c *clk) hold() func() {
	if c.tab.Load() == nil {
		return func() {} // not calibrated (Calibrate chose nanotime)
	}
	c.holdMu.Lock()
	defer c.holdMu.Unlock()
	c.holders++
	if c.holders == 1 {
		c.stop = make(chan struct{})
		go c.anchorWhileHeld(c.stop)
	}
	return sync.OnceFunc(func() {
		c.holdMu.Lock()
		defer c.holdMu.Unlock()
		if c.holders--; c.holders == 0 {
			close(c.stop)
		}
	})
}

func (c *clk) anchorWhileHeld(stop chan struct{}) {
	if c.heldDone != nil {
		defer c.heldDone()
	}
	var ticks <-chan time.Time
	if c.heldTicks != nil {
		var end func()
		ticks, end = c.heldTicks()
		defer end()
	} else {
		t := time.NewTicker(holdEvery)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-stop:
			return
		case <-ticks:
			c.anchorIfStale(int64(holdEvery) / 2)
		}
	}
}

// anchorIfStale takes an anchor unless one was taken in the last age ns
// (by a reader converting, say).
func (c *clk) anchorIfStale(age int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tab.Load() == nil {
		return
	}
	if newest := c.pairs[(c.npair-1)%npairs]; c.readMono()-newest.mono >= age {
		c.anchorLocked()
	}
}

// Anchor takes a new anchor now.
func (c *clk) Anchor() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.anchorLocked()
}

// rateTo measures the reference's rate in ns per tick up to p: from the
// newest earlier pair at least rateBaseline older, or from the oldest kept.
func (c *clk) rateTo(p pair) (float64, bool) {
	n := min(c.npair, npairs)
	for i := 1; i <= n; i++ {
		q := c.pairs[(c.npair-i)%npairs]
		if p.mono-q.mono >= rateBaseline || i == n {
			if p.tsc <= q.tsc || p.mono <= q.mono {
				return 0, false
			}
			return float64(p.mono-q.mono) / float64(p.tsc-q.tsc), true
		}
	}
	return 0, false
}

// anchorLocked takes a tight pair, measures how far the map is from the
// reference there, and publishes a segment starting anchorAhead later,
// continuous with the map at its start, whose rate is the measured rate
// corrected to absorb that offset.
func (c *clk) anchorLocked() {
	tb := c.tab.Load()
	if tb == nil {
		return
	}
	prev := c.pairs[(c.npair-1)%npairs]
	for try := 0; ; try++ {
		p := c.sample()
		rate, ok := c.rateTo(p)
		if !ok {
			return // the sources did not advance: keep the map
		}
		// After a sudden change of slew, the rate since the last anchor
		// differs from the long one by much more than its noise (pairs
		// are good to about 25 ns each): follow it at once.
		if dn, dt := p.mono-prev.mono, p.tsc-prev.tsc; dn > 0 && dt > 0 {
			short := float64(dn) / float64(dt)
			if math.Abs(short/rate-1) > 10*100/float64(dn) {
				rate = short
			}
		}
		c.addPair(p)
		start := p.tsc + int64(anchorAhead/rate)
		x := tb.nanos(start)
		ref := float64(p.mono) + float64(start-p.tsc)*rate // the reference at start
		off := float64(x) - ref                            // > 0: the map is ahead
		// Absorb the offset over twice the time since the last anchor: by
		// the next anchor, if it comes as soon, half of it is gone, and
		// none too much if it comes up to twice as late. Small offsets
		// more slowly.
		horizon := 2 * math.Max(float64(p.mono-prev.mono), anchorEvery)
		if a := math.Abs(off); a < gentle {
			horizon = math.Min(horizon*gentle/math.Max(a, 1), maxHorizon)
		}
		slope := rate * (1 - off/horizon)
		slope = math.Min(math.Max(slope, rate/2), rate*2)
		base := x
		if off < -stepAhead {
			base, slope = int64(ref), rate
		}
		s := segment{start: start, base: base, mult: uint64(slope * (1 << shift))}
		segs := tb.segs
		if len(segs) >= maxSegments {
			segs = thin(segs)
		}
		next := &table{cur: s, limit: p.tsc + int64(anchorEvery/rate), segs: append(segs, s)}
		if c.publish(next, int64(anchorAhead/4/rate)) {
			return
		}
		if try == 8 {
			// Too slow to publish every time: keep the map, and let
			// conversions past the limit try again a while later.
			c.retry.Store(c.readTSC() + int64(retryAfter/rate))
			return
		}
	}
}

// publish stores next unless the TSC is within margin ticks of its
// newest segment's start already, and reports whether it did. No tick at
// or after that start may have been converted with the table before it:
// seq is odd from before the check until after the store, so a
// conversion that overlaps them runs again, with next, and one that ends
// before them read its tick before the check, before the start (margin
// covers the TSCs' skew across CPUs). It is pinned meanwhile, so that a
// conversion spinning on the odd seq waits for a few instructions, not
// for a goroutine the scheduler set aside; next is built before, since a
// pinned goroutine must not allocate.
func (c *clk) publish(next *table, margin int64) bool {
	rt.Pin()
	defer rt.Unpin()
	c.seq.Add(1)
	if c.readTSC()+margin >= next.cur.start {
		// Refused: the table did not change, so no conversion needs to
		// run again. A seq that moved here made a conversion that
		// anchors, and is refused every time, run again for ever.
		c.seq.Add(^uint64(0))
		return false
	}
	if c.publishHook != nil {
		c.publishHook()
	}
	c.tab.Store(next)
	c.seq.Add(1)
	return true
}

// thin returns segs with about half of its segments gone: all but the
// newest keepSegments are simplified, removing the joins where the map
// bends least (first those where it bends by at most 64 ns, then twice
// that, ...) and replacing the segments around them by their chord. The
// map stays continuous where it was and increasing; it changes by at most
// the final tolerance, and only for ticks older than the newest
// keepSegments segments.
func thin(segs []segment) []segment {
	n := len(segs) - keepSegments // segs[n] stays, and everything after it
	if n < 2 {
		return segs
	}
	for tol := int64(64); ; tol *= 2 {
		kept := thinJoins(segs[:n+1], tol)
		if len(kept)-1 <= n/2 || tol >= 1<<40 {
			out := make([]segment, 0, len(kept)-1+keepSegments+maxSegments/2)
			for i := 0; i+1 < len(kept); i++ {
				a, b := kept[i], kept[i+1]
				if b == a+1 {
					out = append(out, segs[a])
				} else {
					out = append(out, chord(segs[a].start, segs[a].base, segs[b].start, segs[b].base))
				}
			}
			return append(out, segs[n:]...)
		}
	}
}

// thinJoins returns the indexes of the segments of v to keep, first and
// last included, such that the chord between two kept ones is within tol
// of the map at every start between them (on both sides of the join, for
// a map that stepped forward there), spanning at most 16 segments.
func thinJoins(v []segment, tol int64) []int {
	kept := []int{0}
	last := 0
	for j := 2; j < len(v); j++ {
		ok := j-last <= 16
		c := chord(v[last].start, v[last].base, v[j].start, v[j].base)
		for k := last + 1; ok && k <= j; k++ {
			at := c.nanos(v[k].start)
			ok = abs(v[k].base-at) <= tol && abs(v[k-1].nanos(v[k].start)-at) <= tol
		}
		if !ok {
			last = j - 1
			kept = append(kept, last)
		}
	}
	return append(kept, len(v)-1)
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// chord is the segment from (t0, n0) through (t1, n1), rounded so that it
// does not pass above n1.
func chord(t0, n0, t1, n1 int64) segment {
	dt, dn := uint64(t1-t0), uint64(n1-n0)
	if dn>>shift >= dt {
		return segment{start: t0, base: n0, mult: math.MaxUint64 >> 1}
	}
	q, _ := bits.Div64(dn>>(64-shift), dn<<shift, dt)
	return segment{start: t0, base: n0, mult: q}
}

// BlockRefinement makes the background refinement that Calibrate starts
// wait until release is called, for tests that check that no request waits
// for the calibration. Call it before Calibrate.
func BlockRefinement() (release func()) {
	gate := make(chan struct{})
	std.refineHook = func() { <-gate }
	return sync.OnceFunc(func() { close(gate) })
}
