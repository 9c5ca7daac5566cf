//go:build !tracemark_debug

package marker

// Without the tracemark_debug build tag, the debug checks compile to
// nothing: eventDebug is empty (and placed where an empty field adds no
// padding), the methods are empty and inlined, and Fire's call of done is
// removed as dead code. See debug_on.go.

const debugMode = false

// eventDebug is the debug state of an Event: nothing.
type eventDebug struct{}

// eventRef is what a Value knows of the Event it was read from: its
// marker, for the messages of wrong-kind accessors.
type eventRef struct{ info *Info }

// ref returns the eventRef of a Value read from e, whose marker is m.
// With tracemark_debug, it also checks e, in place of Field's own check,
// which would make Field and FieldByName too costly to inline.
func (e *Event) ref(m *Info) eventRef { return eventRef{m} }

// marker returns the marker of the Event, or nil for a Value made by a
// Value constructor.
func (r eventRef) marker() *Info { return r.info }

func (e *Event) done() {}

func (e *Event) check() {}

func (v Value) check() {}
