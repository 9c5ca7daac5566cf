package clock

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/internal/rt"
)

// TestTickReadBeforeCalibrate converts a TSC reading taken before the
// clock's first anchor (it is the first test of the package).
func TestTickReadBeforeCalibrate(t *testing.T) {
	tk := rt.Rdtsc()
	Calibrate()
	if Source() != "tsc" {
		t.Skip("the TSC is not used here")
	}
	if got, now := ToNanos(tk), Now(); got > now || now-got > 1e9 {
		t.Errorf("a tick read before Calibrate converts to %d, Now is %d", got, now)
	}
}

func TestNowFollowsTheMonotonicClock(t *testing.T) {
	Calibrate()
	t.Logf("source: %s", Source())
	prev := Now()
	for range 100000 {
		n := Now()
		if n < prev {
			t.Fatalf("Now went back: %d after %d", n, prev)
		}
		prev = n
	}
	// Against runtime.nanotime over a sleep: within 20 µs. Each pair is
	// read between two nanotime reads close together, so that a goroutine
	// descheduled mid-pair does not count.
	a, na := bracketed(t)
	time.Sleep(100 * time.Millisecond)
	b, nb := bracketed(t)
	if diff := (b - a) - (nb - na); diff > 20_000 || diff < -20_000 {
		t.Errorf("over %v, Now advanced %d ns more than nanotime", time.Duration(nb-na), diff)
	}
	if d := b - nb; d > 100_000 || d < -100_000 {
		t.Errorf("Now is %d ns away from nanotime", d)
	}
}

// TestTicksConvertLikeNow checks that a Ticks reading converted later
// falls between the Now readings taken around it.
func TestTicksConvertLikeNow(t *testing.T) {
	Calibrate()
	for range 10000 {
		before := Now()
		tk := Ticks()
		after := Now()
		if ns := ToNanos(tk); ns < before || ns > after {
			t.Fatalf("Ticks %d converts to %d, outside [%d, %d] (source %s)", tk, ns, before, after, Source())
		}
	}
}

// bracketed reads Now between two nanotime reads at most 5 µs apart and
// returns it with their midpoint.
func bracketed(t *testing.T) (now, mono int64) {
	for range 1000 {
		n1 := rt.Nanotime()
		c := Now()
		n2 := rt.Nanotime()
		if n2-n1 < 5_000 {
			return c, n1 + (n2-n1)/2
		}
	}
	t.Fatal("could not read the clocks within 5 µs of each other")
	return 0, 0
}

func BenchmarkNow(b *testing.B) {
	Calibrate()
	var s int64
	for range b.N {
		s += Now()
	}
	_ = s
}

func BenchmarkTicks(b *testing.B) {
	Calibrate()
	var s int64
	for range b.N {
		s += Ticks()
	}
	_ = s
}

func BenchmarkNanotime(b *testing.B) {
	var s int64
	for range b.N {
		s += rt.Nanotime()
	}
	_ = s
}

// TestTicksBeforeTheAnchor converts ticks before a segment's start: they
// extrapolate backwards (signed), instead of wrapping around to ~6e18 ns.
func TestTicksBeforeTheAnchor(t *testing.T) {
	s := segment{start: 1_000_000_000_000, base: 500_000_000_000, mult: 1 << (shift - 1)} // 0.5 ns per tick
	for _, tc := range []struct{ tick, want int64 }{
		{s.start, s.base},
		{s.start + 1000, s.base + 500},
		{s.start - 1, s.base - 1}, // -0.5 rounds down, like +0.5
		{s.start - 1000, s.base - 500},
		{s.start - 3_000_000_000, s.base - 1_500_000_000},
	} {
		if got := s.nanos(tc.tick); got != tc.want {
			t.Errorf("tick start%+d converts to base%+d, want base%+d", tc.tick-s.start, got-s.base, tc.want-s.base)
		}
	}
	tb := &table{cur: s, limit: math.MaxInt64, segs: []segment{s}}
	if got, want := tb.nanos(s.start-2000), s.base-1000; got != want {
		t.Errorf("table: tick before the first segment converts to base%+d, want base%+d", got-s.base, want-s.base)
	}
}

// TestRefinementDoesNotBlockConversions blocks the background refinement
// and checks that the coarse calibration converts on its own.
func TestRefinementDoesNotBlockConversions(t *testing.T) {
	s := newSim(1, func(float64) float64 { return 0 })
	gate := make(chan struct{})
	c := s.clock()
	c.refineHook = func() { <-gate }
	early := s.record()
	s.advance(50_000)
	if !c.coarse() {
		t.Fatal("coarse calibration failed")
	}
	done := make(chan struct{})
	go func() { defer close(done); c.refineHook() }() // the refinement, parked
	s.advance(1e6)
	rec := s.record()
	for _, r := range []record{early, rec} {
		if got := c.convertForTest(r.tick); math.Abs(float64(got)-r.ref) > 1000 {
			t.Errorf("before refinement: converted %d, reference %.0f", got, r.ref)
		}
	}
	close(gate)
	<-done
}

// TestAnchoringHammer converts and re-anchors the process clock from
// several goroutines: Now never goes back on a goroutine, and a Ticks
// reading converts between the Now readings around it, whatever anchors
// were taken in between.
func TestAnchoringHammer(t *testing.T) {
	Calibrate()
	if Source() != "tsc" {
		t.Skip("the TSC is not used here")
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				std.Anchor()
			}
		}
	}()
	errs := make(chan string, 4)
	var conv sync.WaitGroup
	for range 3 {
		conv.Add(1)
		go func() {
			defer conv.Done()
			prev := Now()
			for range 20000 {
				tk := Ticks()
				after := Now()
				if ns := ToNanos(tk); ns < prev || ns > after || after < prev {
					errs <- fmt.Sprintf("Now %d, Ticks→%d, Now %d", prev, ns, after)
					return
				}
				prev = after
			}
		}()
	}
	conv.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestThinning thins a full table of segments with a forward step in its
// old part: about half remain, the newest are untouched, the map stays
// increasing, and old ticks convert as before, to within 64 ns where the
// map hardly bends.
func TestThinning(t *testing.T) {
	var segs []segment
	start, base := int64(1e12), int64(5e11)
	for i := range maxSegments {
		// 0.34 ns per tick, wobbling by ±0.01 ppm; a 2 ms step at 100.
		mult := uint64(1_460_288_880) + uint64(i%3)*15 // 0.34 * 2^32
		if i == 100 {
			base += 2_000_000
		}
		s := segment{start: start, base: base, mult: mult}
		segs = append(segs, s)
		start += 30_000_000 // 10 ms of ticks
		base = s.nanos(start)
	}
	before := &table{cur: segs[len(segs)-1], segs: segs}
	out := thin(segs)
	after := &table{cur: out[len(out)-1], segs: out}
	if len(out) > maxSegments/2+keepSegments {
		t.Errorf("%d segments remain of %d", len(out), len(segs))
	}
	if got, want := out[len(out)-keepSegments:], segs[len(segs)-keepSegments:]; !slices.Equal(got, want) {
		t.Error("the newest segments changed")
	}
	prev := int64(math.MinInt64)
	for tk := segs[0].start - 1e6; tk < start; tk += 1_000_003 {
		got := after.nanos(tk)
		if got < prev {
			t.Fatalf("thinned map goes back at tick %d", tk)
		}
		prev = got
		if d := got - before.nanos(tk); d > 64 || d < -64 {
			t.Fatalf("tick %d converts %d ns away from before", tk, d)
		}
	}
}

// BenchmarkToNanos converts a reading in the newest segment, the reader's
// common case.
func BenchmarkToNanos(b *testing.B) {
	Calibrate()
	tk := Ticks()
	var s int64
	for range b.N {
		s += ToNanos(tk)
	}
	_ = s
}

// BenchmarkToNanosPreviousSegment converts a reading taken just before
// the newest anchor, as records drained right after an anchor are.
func BenchmarkToNanosPreviousSegment(b *testing.B) {
	Calibrate()
	if Source() != "tsc" {
		b.Skip("the TSC is not used here")
	}
	tk := Ticks()
	std.Anchor()
	var s int64
	for range b.N {
		s += ToNanos(tk)
	}
	_ = s
}
