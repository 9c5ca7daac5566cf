package guest

import (
	"encoding/binary"
	"fmt"
)

// Marker1 to Marker6 are in marker_gen.go.
//go:generate go run ./internal/genmarkers -o marker_gen.go

// Stability says how much an operator may rely on a marker staying as it
// is, as marker.Stability does on the host. It is also an Option.
type Stability uint8

const (
	// Unstable markers may change in any release. The default.
	Unstable Stability = iota
	// Stable markers keep their name and schema across releases.
	Stable
	// Internal markers are for the module's developers.
	Internal
)

func (s Stability) apply(d *definition) { d.stability = s }

// Option configures a marker at definition: Doc or a Stability.
type Option interface{ apply(*definition) }

type docOption string

func (o docOption) apply(d *definition) { d.doc = string(o) }

// Doc gives the marker a one-line description for operators (at most
// MaxDocBytes; longer text is truncated).
func Doc(text string) Option { return docOption(text) }

type definition struct {
	stability Stability
	doc       string
}

type fieldInfo struct {
	name string
	kind uint8
}

// Error is the host's answer to a marker definition it refused (a
// negative ABI v1 result), or a definition the SDK could not encode.
type Error int32

// The errors of ABI v1 (see package module for the host's side).
const (
	ErrFault    Error = -1   // pointer outside memory
	ErrInvalid  Error = -2   // malformed encoding or invalid definition
	ErrBadMark  Error = -3   // unknown marker handle
	ErrUTF8     Error = -4   // invalid UTF-8
	ErrTooBig   Error = -5   // over a limit
	ErrExists   Error = -6   // name taken by the host or another module
	ErrLimit    Error = -7   // too many markers
	ErrEncoding Error = -100 // the SDK could not encode the definition (name too long)
)

func (e Error) Error() string {
	switch e {
	case ErrFault:
		return "tracemark: pointer out of bounds"
	case ErrInvalid:
		return "tracemark: invalid marker definition"
	case ErrBadMark:
		return "tracemark: unknown marker"
	case ErrUTF8:
		return "tracemark: invalid UTF-8"
	case ErrTooBig:
		return "tracemark: too large"
	case ErrExists:
		return "tracemark: marker name taken by the host or another module"
	case ErrLimit:
		return "tracemark: too many markers"
	case ErrEncoding:
		return "tracemark: marker or field name longer than 255 bytes"
	}
	return fmt.Sprintf("tracemark: error %d", int32(e))
}

// define encodes an ABI v1 definition and asks the host for a handle.
func define(name string, fields []fieldInfo, opts []Option) (int32, Error) {
	var d definition
	for _, o := range opts {
		o.apply(&d)
	}
	if len(name) > 255 {
		return 0, ErrEncoding
	}
	b := make([]byte, 0, 64)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = append(b, byte(len(fields)))
	for _, f := range fields {
		if len(f.name) > 255 {
			return 0, ErrEncoding
		}
		b = append(b, f.kind, byte(len(f.name)))
		b = append(b, f.name...)
	}
	b = append(b, byte(d.stability))
	doc := d.doc[:min(len(d.doc), MaxDocBytes)]
	b = binary.LittleEndian.AppendUint16(b, uint16(len(doc)))
	b = append(b, doc...)
	h := defineRaw(b)
	if h <= 0 {
		return 0, Error(h)
	}
	return h, 0
}

// handle holds a marker's host handle, or the error that refused it, and
// the index of its enabled flag.
type handle struct {
	h   int32
	err Error
	on  uint8 // index in flags
}

// flags are the module's enabled flags (the tracemark_flags extension of
// ABI v1): the host keeps flags[h] at 1 while marker h is enabled, for
// handles below flagAsk. flags[0], the flag of markers the host refused
// to define (and of zero Markers), stays 0; flags[flagAsk], the flag of
// handles beyond the array, stays 1: their Fire asks the host. Natively
// every defined marker asks (there is no host to write flags).
var flags = [256]byte{flagAsk: 1}

// flagAsk is the index of the flag that is always set.
const flagAsk = 255

func newHandle(h int32, err Error) handle {
	switch {
	case h <= 0:
		return handle{h, err, 0}
	case h < flagAsk && hostFlags:
		return handle{h, err, uint8(h)}
	}
	return handle{h, err, flagAsk}
}

// Err returns why the host refused the marker's definition, or nil. A
// refused marker's Fire does nothing.
func (h handle) Err() error {
	if h.err != 0 {
		return h.err
	}
	return nil
}

// Enabled reports whether the host has probes for the marker (a load, or
// a host call for a module with more than 254 markers): use it to guard
// arguments that are expensive to compute.
func (h handle) Enabled() bool {
	if h.on == flagAsk {
		return enabled(h.h)
	}
	return flags[h.on] != 0
}

// Marker0 is a marker with no fields.
type Marker0 struct{ handle }

// Define0 defines a marker with no fields. Call it at package level: the
// host learns the marker when the module is loaded.
func Define0(name string, opts ...Option) Marker0 {
	h, err := define(name, nil, opts)
	return Marker0{newHandle(h, err)}
}

// Fire sends an event to the host if the marker is enabled. A disabled
// marker costs a load and a branch, inlined in the caller.
func (m Marker0) Fire() {
	if flags[m.on] != 0 {
		if b := beginEvent(); batching {
			endEvent(m.h, 0)
		} else {
			endSlow(m.h, b, 0)
		}
	}
}

// scratchSize is the size of Fire's argument buffer: six fields of at
// most MaxFieldBytes and their lengths fit.
const scratchSize = 6 * (4 + MaxFieldBytes)
