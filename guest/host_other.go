//go:build !wasip1

package guest

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// Outside a wasip1 module there is no host: definitions succeed with
// made-up handles and events go nowhere, so that a module's code can be
// unit-tested natively. Tests of this package intercept them.

var nativeHandles atomic.Int32

// nativeDefine and nativeFire, when set (by tests), see what would be sent
// to the host.
var (
	nativeDefine func(def []byte) int32
	nativeFire   func(h int32, args []byte) int32
)

func defineRaw(b []byte) int32 {
	if nativeDefine != nil {
		return nativeDefine(b)
	}
	return nativeHandles.Add(1)
}

func fire(h int32, b []byte) int32 {
	if nativeFire != nil {
		return nativeFire(h, b)
	}
	return 0
}

func enabled(int32) bool { return false }

// hostFlags says that no host writes flags: every marker asks.
const hostFlags = false

// scratch is Fire's argument buffer; natively, where goroutines run in
// parallel, from a pool.
var scratchPool = sync.Pool{New: func() any { return new([scratchSize]byte) }}

// beginEvent returns a buffer to encode an event's arguments into.
func beginEvent() []byte { return scratchPool.Get().(*[scratchSize]byte)[:] }

// batching is false natively: every event goes to fire.
const batching = false

// endEvent is never called natively (see batching).
func endEvent(int32, int) {}

// endSlow sends the event whose n bytes of arguments beginEvent's buffer
// b holds.
func endSlow(h int32, b []byte, n int) {
	fire(h, b[:n])
	scratchPool.Put((*[scratchSize]byte)(b))
}

// Handle implements a hook in a wasip1 module (see the wasip1 version's
// documentation). Outside one it panics: call the hook's logic directly
// in native tests.
func Handle(in unsafe.Pointer, n uint32, fn func(in []byte) (out []byte)) uint64 {
	panic("guest.Handle: only in a GOOS=wasip1 module")
}
