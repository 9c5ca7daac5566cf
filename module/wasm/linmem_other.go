//go:build !(linux || darwin)

package wasm

import "github.com/tetratelabs/wazero/experimental"

// linearMemory is a mapped linear memory (see linmem_unix.go); none is
// made where the host cannot map memory, or cannot reserve it without
// committing it (MAP_NORESERVE: Linux and macOS).
type linearMemory struct{}

func (*linearMemory) unmap() {}

// memoryAllocator is wazero's own (Go slices) where the host cannot map
// memory.
func (i *instance) memoryAllocator() experimental.MemoryAllocator { return nil }

// unmapMemory does nothing: no memory is mapped.
func (i *instance) unmapMemory() {}
