package marker

import (
	"sync/atomic"
	"testing"

	"github.com/tracemark/tracemark/internal/rt"
)

// steppedReader performs dispatch's reader protocol one step at a time, so
// that a test can put an Unregister between any two steps. It uses the same
// counters as dispatch: the per-P slots with plain stores, or the sharded
// atomics.
type steppedReader struct {
	perP bool
	idx  uint32
	tok  readToken
	list *probeList
	live []*Probe
	left bool
}

func (r *steppedReader) loadEpoch() { r.idx = epoch.Load() & 1 }

func (r *steppedReader) countIn() {
	if !r.perP {
		r.tok = enterAtomic(r.idx)
		return
	}
	pid := rt.Pin()
	perPReaders[pid].lock[r.idx]++
	rt.Unpin()
	r.tok = readToken{idx: r.idx}
}

// loadList loads the probe list and decides which probes to call, as
// dispatch does when it tests each probe's dead flag.
func (r *steppedReader) loadList(m *Info) {
	r.list = m.probes.Load()
	r.live = nil
	for _, p := range r.list.probes {
		if !p.dead.Load() {
			r.live = append(r.live, p)
		}
	}
}

func (r *steppedReader) call() {
	for _, p := range r.live {
		p.fn(nil)
	}
}

// leave ends the reader section once; later calls do nothing, so that a
// failing test can leave it in a deferred call and not wedge the tests
// after it.
func (r *steppedReader) leave() {
	if !r.left {
		r.left = true
		exitRead(r.tok)
	}
}

// TestGraceLateReaderInStaleIndex drives one reader through the window
// between loading the epoch and counting itself in: load epoch; Unregister;
// Register; count in; load list; Unregister; call. The reader counts itself
// in under an index the first Unregister made inactive, so the second
// Unregister must wait for that index too, not only for the one it flips
// away from.
func TestGraceLateReaderInStaleIndex(t *testing.T) {
	for _, variant := range []string{"sharded atomics", "per-P counters"} {
		t.Run(variant, func(t *testing.T) {
			perP := variant == "per-P counters"
			if perP && !fastRead {
				t.Skip("per-P counters are not used in this build (race detector, no membarrier, or not linux/amd64)")
			}
			name := "gracestep:" + map[bool]string{false: "atomic", true: "perp"}[perP]
			m := Define0(name)
			first, err := Register(name, func(*Event) {})
			if err != nil {
				t.Fatal(err)
			}

			r := &steppedReader{perP: perP}
			r.loadEpoch()
			first.Unregister()

			var returned atomic.Bool
			var lateCalls atomic.Int64
			second, err := Register(name, func(*Event) {
				if returned.Load() {
					lateCalls.Add(1)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			r.countIn()
			defer r.leave()
			r.loadList(m.Info())
			if len(r.live) != 1 {
				t.Fatalf("reader sees %d live probes, want 1", len(r.live))
			}

			// Unregister must find the reader inside and wait: the hook
			// says it did, before Unregister can return.
			waiting := make(chan struct{}, 1)
			graceWaitHook = func(uint32) {
				select {
				case waiting <- struct{}{}:
				default:
				}
			}
			defer func() { graceWaitHook = nil }()
			done := make(chan struct{})
			go func() {
				second.Unregister()
				returned.Store(true)
				close(done)
			}()
			select {
			case <-done:
				t.Fatal("Unregister returned while a reader counted in under a stale epoch index still held the probe")
			case <-waiting:
			}
			r.call()
			r.leave()
			<-done
			if n := lateCalls.Load(); n != 0 {
				t.Fatalf("probe called %d times after Unregister returned", n)
			}
		})
	}
}
