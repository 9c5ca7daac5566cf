package clock

import (
	"testing"
	"time"
)

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
		n1 := nanotime()
		c := Now()
		n2 := nanotime()
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
		s += nanotime()
	}
	_ = s
}
