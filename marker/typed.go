package marker

import (
	"sync/atomic"
	"unsafe"
)

// The typed markers. Each MarkerN is a small value (one pointer) holding
// the shared *Info; copy it freely. Fire is written so that the compiler
// inlines it: a disabled marker costs one atomic load and a branch, and its
// arguments are never evaluated into an Event.

// Marker0 is a marker with no fields.
type Marker0 struct{ info *Info }

// Define0 defines a marker with no fields. Call it once per call site, at package
// level. It panics if the name or a field name is invalid, or if a marker
// of the same name was defined with a different schema (the panic value is
// a *ConflictError naming both source locations).
func Define0(name string, opts ...Option) Marker0 {
	return Marker0{mustDefine(name, []FieldInfo{}, opts)}
}

// Fire delivers an event to the marker's probes, if any.
func (m Marker0) Fire() {
	if atomic.LoadUint32(&m.info.on) != 0 {
		m.fire()
	}
}

func (m Marker0) fire() {
	var ev Event
	ev.info = m.info
	dispatch(hide(&ev))
	if debugMode {
		ev.done()
	}
}

// Enabled reports whether the marker has probes. Use it to guard arguments
// that are expensive to compute.
func (m Marker0) Enabled() bool { return atomic.LoadUint32(&m.info.on) != 0 }

// Info returns the marker's registry entry.
func (m Marker0) Info() *Info { return m.info }

// Marker1 is a marker with one field.
type Marker1[A any] struct{ info *Info }

// Define1 defines a marker with one field. Call it once per call site, at package
// level. It panics if the name or a field name is invalid, or if a marker
// of the same name was defined with a different schema (the panic value is
// a *ConflictError naming both source locations).
func Define1[A any](name string, a Field[A], opts ...Option) Marker1[A] {
	return Marker1[A]{mustDefine(name, []FieldInfo{a.Info()}, opts)}
}

// Fire delivers an event to the marker's probes, if any.
func (m Marker1[A]) Fire(a A) {
	if atomic.LoadUint32(&m.info.on) != 0 {
		m.fire(a)
	}
}

func (m Marker1[A]) fire(a A) {
	var ev Event
	ev.info = m.info
	ev.head.Fields[0] = unsafe.Pointer(&a)
	dispatch(hide(&ev))
	if debugMode {
		ev.done()
	}
}

// Enabled reports whether the marker has probes. Use it to guard arguments
// that are expensive to compute.
func (m Marker1[A]) Enabled() bool { return atomic.LoadUint32(&m.info.on) != 0 }

// Info returns the marker's registry entry.
func (m Marker1[A]) Info() *Info { return m.info }

// Marker2 is a marker with 2 fields.
type Marker2[A, B any] struct{ info *Info }

// Define2 defines a marker with 2 fields. Call it once per call site, at package
// level. It panics if the name or a field name is invalid, or if a marker
// of the same name was defined with a different schema (the panic value is
// a *ConflictError naming both source locations).
func Define2[A, B any](name string, a Field[A], b Field[B], opts ...Option) Marker2[A, B] {
	return Marker2[A, B]{mustDefine(name, []FieldInfo{a.Info(), b.Info()}, opts)}
}

// Fire delivers an event to the marker's probes, if any.
func (m Marker2[A, B]) Fire(a A, b B) {
	if atomic.LoadUint32(&m.info.on) != 0 {
		m.fire(a, b)
	}
}

func (m Marker2[A, B]) fire(a A, b B) {
	var ev Event
	ev.info = m.info
	ev.head.Fields[0] = unsafe.Pointer(&a)
	ev.head.Fields[1] = unsafe.Pointer(&b)
	dispatch(hide(&ev))
	if debugMode {
		ev.done()
	}
}

// Enabled reports whether the marker has probes. Use it to guard arguments
// that are expensive to compute.
func (m Marker2[A, B]) Enabled() bool { return atomic.LoadUint32(&m.info.on) != 0 }

// Info returns the marker's registry entry.
func (m Marker2[A, B]) Info() *Info { return m.info }

// Marker3 is a marker with 3 fields.
type Marker3[A, B, C any] struct{ info *Info }

// Define3 defines a marker with 3 fields. Call it once per call site, at package
// level. It panics if the name or a field name is invalid, or if a marker
// of the same name was defined with a different schema (the panic value is
// a *ConflictError naming both source locations).
func Define3[A, B, C any](name string, a Field[A], b Field[B], c Field[C], opts ...Option) Marker3[A, B, C] {
	return Marker3[A, B, C]{mustDefine(name, []FieldInfo{a.Info(), b.Info(), c.Info()}, opts)}
}

// Fire delivers an event to the marker's probes, if any.
func (m Marker3[A, B, C]) Fire(a A, b B, c C) {
	if atomic.LoadUint32(&m.info.on) != 0 {
		m.fire(a, b, c)
	}
}

func (m Marker3[A, B, C]) fire(a A, b B, c C) {
	var ev Event
	ev.info = m.info
	ev.head.Fields[0] = unsafe.Pointer(&a)
	ev.head.Fields[1] = unsafe.Pointer(&b)
	ev.head.Fields[2] = unsafe.Pointer(&c)
	dispatch(hide(&ev))
	if debugMode {
		ev.done()
	}
}

// Enabled reports whether the marker has probes. Use it to guard arguments
// that are expensive to compute.
func (m Marker3[A, B, C]) Enabled() bool { return atomic.LoadUint32(&m.info.on) != 0 }

// Info returns the marker's registry entry.
func (m Marker3[A, B, C]) Info() *Info { return m.info }

// Marker4 is a marker with 4 fields.
type Marker4[A, B, C, D any] struct{ info *Info }

// Define4 defines a marker with 4 fields. Call it once per call site, at package
// level. It panics if the name or a field name is invalid, or if a marker
// of the same name was defined with a different schema (the panic value is
// a *ConflictError naming both source locations).
func Define4[A, B, C, D any](name string, a Field[A], b Field[B], c Field[C], d Field[D], opts ...Option) Marker4[A, B, C, D] {
	return Marker4[A, B, C, D]{mustDefine(name, []FieldInfo{a.Info(), b.Info(), c.Info(), d.Info()}, opts)}
}

// Fire delivers an event to the marker's probes, if any.
func (m Marker4[A, B, C, D]) Fire(a A, b B, c C, d D) {
	if atomic.LoadUint32(&m.info.on) != 0 {
		m.fire(a, b, c, d)
	}
}

func (m Marker4[A, B, C, D]) fire(a A, b B, c C, d D) {
	var ev Event
	ev.info = m.info
	ev.head.Fields[0] = unsafe.Pointer(&a)
	ev.head.Fields[1] = unsafe.Pointer(&b)
	ev.head.Fields[2] = unsafe.Pointer(&c)
	ev.head.Fields[3] = unsafe.Pointer(&d)
	dispatch(hide(&ev))
	if debugMode {
		ev.done()
	}
}

// Enabled reports whether the marker has probes. Use it to guard arguments
// that are expensive to compute.
func (m Marker4[A, B, C, D]) Enabled() bool { return atomic.LoadUint32(&m.info.on) != 0 }

// Info returns the marker's registry entry.
func (m Marker4[A, B, C, D]) Info() *Info { return m.info }

// Marker5 is a marker with 5 fields.
type Marker5[A, B, C, D, E any] struct{ info *Info }

// Define5 defines a marker with 5 fields. Call it once per call site, at package
// level. It panics if the name or a field name is invalid, or if a marker
// of the same name was defined with a different schema (the panic value is
// a *ConflictError naming both source locations).
func Define5[A, B, C, D, E any](name string, a Field[A], b Field[B], c Field[C], d Field[D], e Field[E], opts ...Option) Marker5[A, B, C, D, E] {
	return Marker5[A, B, C, D, E]{mustDefine(name, []FieldInfo{a.Info(), b.Info(), c.Info(), d.Info(), e.Info()}, opts)}
}

// Fire delivers an event to the marker's probes, if any.
func (m Marker5[A, B, C, D, E]) Fire(a A, b B, c C, d D, e E) {
	if atomic.LoadUint32(&m.info.on) != 0 {
		m.fire(a, b, c, d, e)
	}
}

func (m Marker5[A, B, C, D, E]) fire(a A, b B, c C, d D, e E) {
	var ev Event
	ev.info = m.info
	ev.head.Fields[0] = unsafe.Pointer(&a)
	ev.head.Fields[1] = unsafe.Pointer(&b)
	ev.head.Fields[2] = unsafe.Pointer(&c)
	ev.head.Fields[3] = unsafe.Pointer(&d)
	ev.head.Fields[4] = unsafe.Pointer(&e)
	dispatch(hide(&ev))
	if debugMode {
		ev.done()
	}
}

// Enabled reports whether the marker has probes. Use it to guard arguments
// that are expensive to compute.
func (m Marker5[A, B, C, D, E]) Enabled() bool { return atomic.LoadUint32(&m.info.on) != 0 }

// Info returns the marker's registry entry.
func (m Marker5[A, B, C, D, E]) Info() *Info { return m.info }

// Marker6 is a marker with 6 fields.
type Marker6[A, B, C, D, E, F any] struct{ info *Info }

// Define6 defines a marker with 6 fields. Call it once per call site, at package
// level. It panics if the name or a field name is invalid, or if a marker
// of the same name was defined with a different schema (the panic value is
// a *ConflictError naming both source locations).
func Define6[A, B, C, D, E, F any](name string, a Field[A], b Field[B], c Field[C], d Field[D], e Field[E], f Field[F], opts ...Option) Marker6[A, B, C, D, E, F] {
	return Marker6[A, B, C, D, E, F]{mustDefine(name, []FieldInfo{a.Info(), b.Info(), c.Info(), d.Info(), e.Info(), f.Info()}, opts)}
}

// Fire delivers an event to the marker's probes, if any.
func (m Marker6[A, B, C, D, E, F]) Fire(a A, b B, c C, d D, e E, f F) {
	if atomic.LoadUint32(&m.info.on) != 0 {
		m.fire(a, b, c, d, e, f)
	}
}

func (m Marker6[A, B, C, D, E, F]) fire(a A, b B, c C, d D, e E, f F) {
	var ev Event
	ev.info = m.info
	ev.head.Fields[0] = unsafe.Pointer(&a)
	ev.head.Fields[1] = unsafe.Pointer(&b)
	ev.head.Fields[2] = unsafe.Pointer(&c)
	ev.head.Fields[3] = unsafe.Pointer(&d)
	ev.head.Fields[4] = unsafe.Pointer(&e)
	ev.head.Fields[5] = unsafe.Pointer(&f)
	dispatch(hide(&ev))
	if debugMode {
		ev.done()
	}
}

// Enabled reports whether the marker has probes. Use it to guard arguments
// that are expensive to compute.
func (m Marker6[A, B, C, D, E, F]) Enabled() bool { return atomic.LoadUint32(&m.info.on) != 0 }

// Info returns the marker's registry entry.
func (m Marker6[A, B, C, D, E, F]) Info() *Info { return m.info }
