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
	// Against runtime.nanotime over a sleep: within 20 µs plus 10 ppm.
	a, na := Now(), nanotime()
	time.Sleep(100 * time.Millisecond)
	b, nb := Now(), nanotime()
	if diff := (b - a) - (nb - na); diff > 20_000 || diff < -20_000 {
		t.Errorf("over %v, Now advanced %d ns more than nanotime", time.Duration(nb-na), diff)
	}
	if d := Now() - nanotime(); d > 100_000 || d < -100_000 {
		t.Errorf("Now is %d ns away from nanotime", d)
	}
}

func BenchmarkNow(b *testing.B) {
	Calibrate()
	var s int64
	for range b.N {
		s += Now()
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
