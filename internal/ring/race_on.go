//go:build race

package ring

import (
	"runtime"
	"unsafe"
)

// The race detector cannot see that procPin serialises the goroutines that
// write one shard: two goroutines running one after the other on the same P
// have no happens-before edge it knows of. Pinning a shard therefore
// acquires, and unpinning releases, a race-detector sync object at the
// shard's address, exactly like the mutex the pin stands for. Only writers
// use it, so writer/reader sharing is still checked in full.

func raceAcquire(s *shard) { runtime.RaceAcquire(unsafe.Pointer(s)) }

func raceRelease(s *shard) { runtime.RaceRelease(unsafe.Pointer(s)) }
