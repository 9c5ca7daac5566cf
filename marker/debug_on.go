//go:build tracemark_debug

package marker

import (
	"strconv"
	"sync/atomic"
)

// With the tracemark_debug build tag, an Event lives on the heap and is
// marked done once its probes have returned; every accessor of the Event,
// and of the Values read from it, checks the mark and panics with a
// *staleError. A probe that keeps an Event (or a Value) beyond its return
// is then found by its first use instead of reading a stack that another
// call has since reused. Events from [Event.Clone] are never done.

const debugMode = true

// eventDebug is the debug state of an Event.
type eventDebug struct {
	done atomic.Bool // the probes of this firing have returned
}

// eventRef is what a Value knows of the Event it was read from: the
// Event itself, nil for values made by the Value constructors.
type eventRef struct{ ev *Event }

// ref checks e and returns the eventRef of a Value read from it.
func (e *Event) ref(*Info) eventRef {
	e.check()
	return eventRef{e}
}

// marker returns the marker of the Event, or nil.
func (r eventRef) marker() *Info {
	if r.ev == nil {
		return nil
	}
	return r.ev.info
}

// done marks e done: its probes have returned.
func (e *Event) done() { e.dbg.done.Store(true) }

func (e *Event) check() {
	if e.dbg.done.Load() {
		panic(&staleError{info: e.info, field: -1})
	}
}

func (v Value) check() {
	if ev := v.from.ev; ev != nil && ev.dbg.done.Load() {
		panic(&staleError{info: ev.info, field: int(v.idx)})
	}
}

// staleError is the panic value of an accessor of an Event, or of a Value
// read from one, used after the Event's probes returned.
type staleError struct {
	info  *Info
	field int // the Value's field index, or -1 for the Event itself
}

func (err *staleError) Error() string {
	what := "Event of " + err.info.Name()
	if err.field >= 0 {
		what = "Value of field " + strconv.Quote(err.info.def.fields[err.field].Name) + " of " + err.info.Name()
	}
	return "marker: " + what + " used after its probe returned; call Event.Clone to keep it"
}
