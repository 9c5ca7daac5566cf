//go:build linux || darwin

package wasm

import (
	"sync/atomic"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// mappedMemories counts the linear memories mapped and not yet unmapped
// (tests check that a released instance gives its memory back).
var mappedMemories atomic.Int64

// linearMemory is a module instance's linear memory in a mapping of its
// own, reserved at its maximum: growing it extends the slice over pages
// that the system gives zeroed on first use, where wazero's own (a Go
// slice) copies the memory and zeroes the new part at each growth (a Go
// module grows its memory tens of times while it initializes), and the
// memory, outside the Go heap, makes no garbage to collect. The mapping
// is reserved without swap (MAP_NORESERVE): only the pages the module
// touches count, as with wazero's.
//
// The instance that owns it unmaps it when it is released, with its lock
// held and no call running in it (pool.releaseInstance); what a probe read
// from the module's memory is valid only while the probe runs (package
// marker's rule), so nothing of the host's points into the mapping after
// that. Free, which wazero calls when it closes the module, does not
// unmap: wazero also closes it inside a call, when the module calls WASI
// proc_exit, and the host still reads the memory after that call returns
// (the events the module batched before it exited).
type linearMemory struct {
	mem []byte // the whole mapping
}

// memoryAllocator returns the allocator of instance i's memory: it maps
// the memory (see linearMemory), or gives wazero's Go slices where the
// system refuses the mapping (a memory limit, a 32-bit address space),
// and records the mapping in i, whose release unmaps it (unmapMemory).
// wazero calls it during the instantiation, with i's lock held.
func (i *instance) memoryAllocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capBytes, maxBytes uint64) experimental.LinearMemory {
		l := allocateMemory(capBytes, maxBytes)
		if lm, ok := l.(*linearMemory); ok {
			i.linmem = append(i.linmem, lm)
		}
		return l
	})
}

// unmapMemory unmaps the memories of instance i. Called with i's lock held
// and no call running in it, once wazero no longer runs its code.
func (i *instance) unmapMemory() {
	for _, l := range i.linmem {
		l.unmap()
	}
	i.linmem = nil
}

func allocateMemory(capBytes, maxBytes uint64) experimental.LinearMemory {
	// A 32-bit address space cannot reserve the maximum of every
	// instance; nor can an empty mapping be made.
	if unsafe.Sizeof(uintptr(0)) < 8 || maxBytes == 0 || maxBytes > 1<<32 {
		return newSliceMemory(capBytes, maxBytes)
	}
	b, err := unix.Mmap(-1, 0, int(maxBytes), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
	if err != nil {
		return newSliceMemory(capBytes, maxBytes)
	}
	mappedMemories.Add(1)
	return &linearMemory{mem: b}
}

// Reallocate returns the memory at size bytes, nil if that is over its
// maximum. Its address does not change.
func (l *linearMemory) Reallocate(size uint64) []byte {
	if l.mem == nil || size > uint64(len(l.mem)) {
		return nil
	}
	return l.mem[:size:size]
}

// Free does nothing: the memory is unmapped when its instance is released
// (see linearMemory).
func (l *linearMemory) Free() {}

// unmap unmaps the memory; it does nothing the second time.
func (l *linearMemory) unmap() {
	if l.mem != nil {
		unix.Munmap(l.mem)
		l.mem = nil
		mappedMemories.Add(-1)
	}
}
