//go:build wasip1

package guest

import "unsafe"

// ABI v1 host functions (see package module's documentation).

//go:wasmimport tracemark_v1 define
func hostDefine(buf unsafe.Pointer, n uint32) int32

//go:wasmimport tracemark_v1 fire
func hostFire(h int32, args unsafe.Pointer, n uint32) int32

//go:wasmimport tracemark_v1 enabled
func hostEnabled(h int32) int32

func defineRaw(b []byte) int32 {
	return hostDefine(unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)))
}

func fire(h int32, b []byte) int32 {
	return hostFire(h, unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)))
}

func enabled(h int32) bool { return hostEnabled(h) == 1 }

// hostFlags says that the host keeps flags current.
const hostFlags = true

// tracemarkFlags is the export tracemark_flags() -> ptr<<32 | len: the
// host writes the flags of handles 1 to flagAsk-1.
//
//go:wasmexport tracemark_flags
//lint:ignore U1000 the host calls it (staticcheck does not know go:wasmexport)
func tracemarkFlags() uint64 {
	return uint64(uintptr(unsafe.Pointer(&flags[0])))<<32 | flagAsk
}

// scratch is the argument buffer that Fire encodes into: big enough for
// any event, so that Fire never allocates. It needs no guard: a module
// runs one goroutine at a time and switches only where one blocks or
// allocates, which Fire does not do, so no other Fire can run in the
// middle of one. (Not sync/atomic either: atomics are function calls in a
// wasm module.)
var scratch [scratchSize]byte

func takeScratch() []byte { return scratch[:] }

func putScratch([]byte) {}

// input is the buffer the host copies a hook's input into; output keeps
// the last hook's output alive until the host has copied it.
var input, output []byte

// tracemarkAlloc is the ABI v1 export tracemark_alloc(size) -> ptr: a
// buffer for the next hook's input. It is reused from call to call.
//
//go:wasmexport tracemark_alloc
//lint:ignore U1000 the host calls it (staticcheck does not know go:wasmexport)
func tracemarkAlloc(size uint32) unsafe.Pointer {
	if uint32(cap(input)) < size {
		input = make([]byte, size)
	}
	return unsafe.Pointer(unsafe.SliceData(input))
}

// Handle implements a hook: call it from a //go:wasmexport function with
// the signature the host calls hooks with, and it passes the input to fn
// and hands fn's output back to the host.
//
//	//go:wasmexport on_request
//	func onRequest(in unsafe.Pointer, n uint32) uint64 {
//		return guest.Handle(in, n, classify)
//	}
//
// fn's input is valid only until fn returns; its output is copied by the
// host after the hook returns and may be reused by the next call.
func Handle(in unsafe.Pointer, n uint32, fn func(in []byte) (out []byte)) uint64 {
	var b []byte
	if n > 0 {
		b = unsafe.Slice((*byte)(in), n)
	}
	output = fn(b)
	if len(output) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(output))))<<32 | uint64(len(output))
}
