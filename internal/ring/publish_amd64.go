//go:build !race

package ring

import (
	"sync/atomic"
	"unsafe"
)

// publish stores v with release ordering: the stores before it (the
// record's bytes) become visible to other CPUs no later than v. On amd64
// every plain store is a release store (x86-TSO), so a MOV is enough, without
// the full barrier of the XCHG that atomic.Uint64.Store compiles to, which
// waits for the record's stores to drain from the store buffer (about 6 ns).
// Being an assembly function, it is also a compiler barrier. Readers load
// the word with an atomic load.
func publish(a *atomic.Uint64, v uint64) {
	storeRelease((*uint64)(unsafe.Pointer(a)), v)
}

//go:noescape
func storeRelease(p *uint64, v uint64)
