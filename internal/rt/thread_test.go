package rt

import (
	"errors"
	"runtime"
	"sync"
	"testing"
)

// TestThreadIDIsGettid checks ThreadID against gettid on many threads at
// once, pinned as the session calls it, and on a goroutine that moves from
// thread to thread.
func TestThreadIDIsGettid(t *testing.T) {
	needGettid(t)
	if err := CheckThreadID(); err != nil {
		if runtime.GOOS != "linux" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	got := onThreads(8, func() [2]int32 {
		Pin()
		id := ThreadID()
		Unpin()
		return [2]int32{id, int32(gettid())}
	})
	seen := map[int32]bool{}
	for _, g := range got {
		if g[0] != g[1] {
			t.Fatalf("ThreadID %d on the thread gettid calls %d", g[0], g[1])
		}
		if seen[g[0]] {
			t.Fatalf("two locked threads have id %d", g[0])
		}
		seen[g[0]] = true
	}
	// Unlocked goroutines, hammering: pinned, the goroutine stays on its
	// thread between the two reads.
	var wg sync.WaitGroup
	errs := make(chan [2]int32, 1)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				Pin()
				a := ThreadID()
				b := int32(gettid())
				Unpin()
				if a != b {
					select {
					case errs <- [2]int32{a, b}:
					default:
					}
					return
				}
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	select {
	case e := <-errs:
		t.Fatalf("pinned ThreadID %d, gettid %d", e[0], e[1])
	default:
	}
}

// TestFindProcID checks the self-check's decisions on made-up Ms.
func TestFindProcID(t *testing.T) {
	m := func(addr uintptr, tid int32, at int) threadSample {
		s := threadSample{m: addr, again: addr, tid: tid, words: make([]uint64, mScan/8)}
		for i := range s.words {
			s.words[i] = uint64(i) // small numbers, as most fields hold
		}
		if at >= 0 {
			s.words[at] = uint64(tid)
		}
		return s
	}
	off, err := findProcID([]threadSample{m(0x1000, 4001, 8), m(0x2000, 4002, 8), m(0x3000, 4003, 8)})
	if err != nil || off != 64 {
		t.Fatalf("procid at word 8: got offset %d, %v; want 64", off, err)
	}
	// A coincidence in one M does not count: the offset must hold the id
	// in every sample.
	a, b := m(0x1000, 4001, 8), m(0x2000, 4002, 8)
	a.words[2] = 4001
	if off, err := findProcID([]threadSample{a, b}); err != nil || off != 64 {
		t.Fatalf("a coincidence at word 2 of one M: got %d, %v; want 64", off, err)
	}
	moved := m(0x1000, 4001, 8)
	moved.again = 0x1100
	for _, tc := range []struct {
		name    string
		samples []threadSample
	}{
		{"one thread", []threadSample{m(0x1000, 4001, 8)}},
		{"no field holds the id", []threadSample{m(0x1000, 4001, -1), m(0x2000, 4002, -1)}},
		{"the id at different offsets", []threadSample{m(0x1000, 4001, 8), m(0x2000, 4002, 9)}},
		{"the M moves", []threadSample{moved, m(0x2000, 4002, 8)}},
		{"no M", []threadSample{m(0, 4001, 8), m(0, 4002, 8)}},
		{"two threads one M", []threadSample{m(0x1000, 4001, 8), m(0x1000, 4002, 8)}},
		{"two threads one id", []threadSample{m(0x1000, 4001, 8), m(0x2000, 4001, 8)}},
	} {
		if _, err := findProcID(tc.samples); !errors.Is(err, ErrNoThreadID) {
			t.Errorf("%s: got %v, want an error wrapping ErrNoThreadID", tc.name, err)
		}
	}
}

func BenchmarkThreadID(b *testing.B) {
	if err := CheckThreadID(); err != nil {
		b.Skip(err)
	}
	Pin()
	defer Unpin()
	var s int32
	for range b.N {
		s += ThreadID()
	}
	_ = s
}
