//go:build !unix

package wasm

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator is wazero's own (Go slices) where the host cannot map
// memory.
var memoryAllocator experimental.MemoryAllocator
