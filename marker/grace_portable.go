//go:build !(linux && amd64) || race

package marker

func enterRead() readToken {
	idx := epoch.Load() & 1
	if widenGraceWindow {
		graceWindow()
	}
	return enterAtomic(idx)
}

func exitRead(t readToken) { t.c.Add(-1) }

func drained(idx uint32) bool { return atomicDrained(idx) }

// The per-P path does not exist here; these let dispatch's inlined fast
// path compile, and fastRead keeps it from running.
const (
	fastRead    = false
	maxPinnedPs = 1
)

var perPReaders [maxPinnedPs]perPSlot
