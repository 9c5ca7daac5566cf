// Package probeabi is the contract between package marker and this
// module's recorders (package session): how an event begins in memory, and
// how a recorder asks for a pinned probe. Nothing outside this module may
// rely on it.
//
// # Event layout
//
// A recorder copies every field of every event it records, so it reads
// them in place: a marker.Event starts with an Event, so a *marker.Event
// converts to an *Event ([Of]). Package marker declares its Event that way
// and tests that it does (TestEventLayout).
//
// # Pinned probes
//
// A probe registered with the [Pinned] option runs with its goroutine
// pinned to its P (see rt.Pin, package internal/rt), like a kernel
// tracepoint probe runs with preemption disabled. Event.P is that P's id, so the probe can use
// per-P buffers without pinning again: the marker's grace-period
// accounting and the recorder's buffer share one pin. A pinned probe must
// not block, allocate or panic (the runtime aborts a program that panics
// while pinned). It may unpin to do such work if it pins again before it
// returns and stores the new P's id in Event.P, where the marker reads it
// back. A pinned probe may also ask for per-marker data (see Pinned).
package probeabi

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"
)

// MaxFields is the most fields a marker may have (marker.MaxFields).
const MaxFields = 8

// Fields holds, for each field of an event, a pointer to the value in its
// Go representation: an int8 for an int8 field, a string header for a
// string, a slice header for bytes, an int64 for a duration, and so on.
// Entries past the marker's field count are unspecified.
type Fields [MaxFields]unsafe.Pointer

// Event is how every marker.Event begins.
type Event struct {
	Fields Fields
	// P is the id of the P a pinned probe runs pinned to. Unspecified for
	// other probes.
	P int
	// Data is what the pinned probe's data function returned for the
	// event's marker when the probe was connected to it.
	Data unsafe.Pointer
}

// Of returns the start of an event; e must be a *marker.Event. What it
// points at is valid only while the probe that received e runs.
func Of[E any](e *E) *Event { return (*Event)(unsafe.Pointer(e)) }

// PinnedOption is the type of package marker's constructor of the pinned
// probe option, with O its ProbeOption and M its *Info: this package cannot
// name them, since marker imports it. If data is not nil, it is called with
// each marker the probe is connected to, after the probe's OnConnect check
// accepted it and with the registry locked, and its result reaches the
// probe in Event.Data: a recorder keeps its per-marker state there instead
// of looking it up on every event.
type PinnedOption[O, M any] func(data func(m M) unsafe.Pointer) O

// pinned is the PinnedOption that package marker set with SetPinned.
var pinned any

// SetPinned makes f the constructor that Pinned calls. Package marker calls
// it when it is initialised, with its own types; nothing else may.
func SetPinned[O, M any](f PinnedOption[O, M]) { pinned = f }

// Pinned returns the option that makes a probe pinned, O being
// marker.ProbeOption and M *marker.Info:
//
//	probeabi.Pinned[marker.ProbeOption](func(m *marker.Info) unsafe.Pointer { ... })
//
// The types are checked against the ones package marker set: other types
// panic on the first call (ErrTypes), which any test of the caller finds.
func Pinned[O, M any](data func(m M) unsafe.Pointer) O {
	f, ok := pinned.(PinnedOption[O, M])
	if !ok {
		panic(fmt.Errorf("probeabi.Pinned[%v, %v]: %w", reflect.TypeFor[O](), reflect.TypeFor[M](), ErrTypes))
	}
	return f(data)
}

// ErrTypes is why Pinned panics when it is instantiated with types other
// than marker.ProbeOption and *marker.Info.
var ErrTypes = errors.New("not the types package marker set (marker.ProbeOption, *marker.Info)")
