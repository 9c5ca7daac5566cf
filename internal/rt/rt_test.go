package rt

import (
	"runtime"
	"testing"
	"time"
)

func TestPinReturnsP(t *testing.T) {
	p := Pin()
	q := Pin() // pins nest
	Unpin()
	Unpin()
	if p < 0 || p >= runtime.GOMAXPROCS(0) {
		t.Fatalf("Pin returned P %d, want [0, %d)", p, runtime.GOMAXPROCS(0))
	}
	if q != p {
		t.Fatalf("a nested Pin returned P %d, the outer one %d", q, p)
	}
}

func TestNanotimeFollowsTimeSince(t *testing.T) {
	start := time.Now()
	a := Nanotime()
	time.Sleep(2 * time.Millisecond)
	b := Nanotime()
	el := time.Since(start)
	if d := time.Duration(b - a); d < 2*time.Millisecond || d > el {
		t.Fatalf("Nanotime advanced %v over a 2ms sleep that time.Since measured as %v", d, el)
	}
}

func TestRdtscAdvances(t *testing.T) {
	a := Rdtsc()
	time.Sleep(time.Millisecond)
	if b := Rdtsc(); b <= a {
		t.Fatalf("Rdtsc went from %d to %d over a sleep", a, b)
	}
}

func TestMembarrier(t *testing.T) {
	if !RegisterMembarrier() {
		if err := Membarrier(); err == nil {
			t.Fatal("Membarrier succeeded although RegisterMembarrier refused")
		}
		t.Skip("no membarrier here")
	}
	if err := Membarrier(); err != nil {
		t.Fatalf("Membarrier after registration: %v", err)
	}
}
