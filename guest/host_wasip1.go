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

// scratch is the argument buffer that Fire encodes into when the host
// gave no event buffer: big enough for any event, so that Fire never
// allocates. It needs no guard: a module runs one goroutine at a time and
// switches only where one blocks or allocates, which Fire does not do, so
// no other Fire can run in the middle of one. (Not sync/atomic either:
// atomics are function calls in a wasm module.) The same holds for
// events.
var scratch [scratchSize]byte

// events is the module's event buffer (the tracemark_events extension of
// ABI v1): an 8-byte header, u32le bytes of records and u32le number of
// records, then the records, each u32le handle, u32le length and the
// argument buffer. Fire appends to it, and calls the host only when the
// next event might not fit; the host delivers the rest when the call into
// the module returns, and empties the header each time.
var events [eventsSize]byte

// batching says that the host asked for events: until then (an older
// host, or package initialization) Fire calls the host for each event.
var batching bool

const (
	eventsSize   = 64 << 10
	batchHeader  = 8
	recordHeader = 8
	// eventsFull is the most record bytes after which any event fits.
	eventsFull = eventsSize - batchHeader - recordHeader - scratchSize
)

// tracemarkEvents is the export tracemark_events() -> ptr<<32 | len: the
// event buffer. The host calls it once, after tracemark_flags.
//
//go:wasmexport tracemark_events
//lint:ignore U1000 the host calls it (staticcheck does not know go:wasmexport)
func tracemarkEvents() uint64 {
	batching = true
	return uint64(uintptr(unsafe.Pointer(&events[0])))<<32 | eventsSize
}

// beginEvent returns the buffer to encode an event's arguments into: the
// free end of the event buffer, or scratch. It is inlined in each Fire,
// with endEvent: a call costs a Go module more than the rest of an
// event. The header's byte count doubles as the test of both the
// buffer's room and whether there is one (see init), so that the common
// case is one load and one branch; wasm is little-endian, and the
// pointers are into a global, so no bounds or nil checks are needed.
func beginEvent() []byte {
	used := *(*uint32)(unsafe.Pointer(&events))
	if used > eventsFull {
		return beginSlow()
	}
	return (*[scratchSize]byte)(unsafe.Add(unsafe.Pointer(&events), batchHeader+recordHeader+used))[:]
}

// beginSlow is beginEvent without an event buffer, or with a full one.
//
//go:noinline
func beginSlow() []byte {
	if !batching {
		return scratch[:]
	}
	hostFire(0, nil, 0) // the host delivers the records and empties the buffer
	return events[batchHeader+recordHeader:][:scratchSize]
}

// endEvent completes the record of an event whose n bytes of arguments
// beginEvent's buffer holds, and the header. Fire calls it if batching,
// else endSlow: endEvent is inlined, and a call would not be.
func endEvent(h int32, n int) {
	// Records are not aligned: wasm does not mind.
	hdr := (*[2]uint32)(unsafe.Pointer(&events))
	rec := (*[2]uint32)(unsafe.Add(unsafe.Pointer(&events), batchHeader+hdr[0]))
	rec[0], rec[1] = uint32(h), uint32(n)
	hdr[0] += recordHeader + uint32(n)
	hdr[1]++
}

// endSlow sends an event without an event buffer: a host call.
func endSlow(h int32, b []byte, n int) { fire(h, b[:n]) }

// Until the host asks for the event buffer, its byte count says it is
// full, so that beginEvent takes its slow path, which uses scratch. The
// host empties the header when it takes the buffer.
func init() {
	*(*uint32)(unsafe.Pointer(&events)) = ^uint32(0)
}

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
