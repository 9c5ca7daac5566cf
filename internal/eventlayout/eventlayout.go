// Package eventlayout is the contract between package marker and this
// module's recorders on how a *marker.Event begins in memory.
//
// A recorder copies every field of every event it records, so it reads
// them as directly as marker's own accessors do: a marker.Event starts with
// a Fields array, so a *marker.Event converts to a *Fields. Package marker
// declares its Event that way and tests that it does (TestEventLayout);
// nothing outside this module may rely on it.
package eventlayout

import "unsafe"

// MaxFields is the most fields a marker may have (marker.MaxFields).
const MaxFields = 8

// Fields holds, for each field of an event, a pointer to the value in its
// Go representation: an int8 for an int8 field, a string header for a
// string, a slice header for bytes, an int64 for a duration, and so on.
// Entries past the marker's field count are unspecified.
type Fields [MaxFields]unsafe.Pointer

// Of returns the field pointers of an event; e must be a *marker.Event.
// The pointers are valid only while the probe that received e runs.
func Of[E any](e *E) *Fields { return (*Fields)(unsafe.Pointer(e)) }
