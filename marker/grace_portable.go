//go:build !(linux && amd64) || race

package marker

func enterRead() readToken { return enterAtomic(epoch.Load() & 1) }

func exitRead(t readToken) { t.c.Add(-1) }

func drained(idx uint32) bool { return atomicDrained(idx) }
