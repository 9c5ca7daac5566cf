package wasm

import "github.com/tetratelabs/wazero/experimental"

// sliceMemory is a linear memory in a Go slice, as wazero makes them:
// growing it copies it.
type sliceMemory struct {
	buf []byte
	max uint64
}

func newSliceMemory(capBytes, maxBytes uint64) experimental.LinearMemory {
	return &sliceMemory{buf: make([]byte, 0, min(capBytes, maxBytes)), max: maxBytes}
}

// Reallocate returns the memory at size bytes, nil if that is over its
// maximum.
func (s *sliceMemory) Reallocate(size uint64) []byte {
	if size > s.max {
		return nil
	}
	if n := uint64(len(s.buf)); size > n {
		s.buf = append(s.buf, make([]byte, size-n)...)
	}
	return s.buf[:size]
}

// Free lets the garbage collector have the memory.
func (s *sliceMemory) Free() { s.buf = nil }
