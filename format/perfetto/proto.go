package perfetto

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the Perfetto trace messages this package writes, from
// protos/perfetto/trace/ in github.com/google/perfetto (trace.proto,
// trace_packet.proto, track_event/*.proto, interned_data/*.proto). Only
// the fields used are listed.
const (
	// Trace
	fTracePacket = 1

	// TracePacket
	fPacketClockSnapshot   = 6
	fPacketTimestamp       = 8
	fPacketSequenceID      = 10 // trusted_packet_sequence_id
	fPacketTrackEvent      = 11
	fPacketInternedData    = 12
	fPacketSequenceFlags   = 13
	fPacketClockID         = 58 // timestamp_clock_id
	fPacketDefaults        = 59 // trace_packet_defaults
	fPacketTrackDescriptor = 60
	fPacketFirstOnSequence = 87 // first_packet_on_sequence

	// TracePacketDefaults
	fDefaultsClockID = 58 // timestamp_clock_id

	// ClockSnapshot
	fSnapshotClock = 1 // clocks

	// ClockSnapshot.Clock
	fClockID          = 1
	fClockTimestamp   = 2
	fClockIncremental = 3 // is_incremental

	// BuiltinClock
	clockBoottime = 6

	// TracePacket.SequenceFlags
	seqIncrementalStateCleared = 1
	seqNeedsIncrementalState   = 2

	// TrackDescriptor
	fTrackUUID         = 1
	fTrackName         = 2
	fTrackProcess      = 3
	fTrackParentUUID   = 5
	fTrackCounter      = 8
	fTrackDescription  = 14
	fTrackChildOrder   = 11 // child_ordering
	fTrackSiblingOrder = 12 // sibling_order_rank

	// TrackDescriptor.ChildTracksOrdering
	childOrderExplicit = 3

	// ProcessDescriptor
	fProcessPID    = 1
	fProcessName   = 6
	fProcessLabels = 8

	// CounterDescriptor
	fCounterUnit = 3

	// CounterDescriptor.Unit
	unitTimeNS = 1

	// TrackEvent
	fEventCategoryIIDs       = 3
	fEventDebugAnnotation    = 4
	fEventType               = 9
	fEventNameIID            = 10
	fEventTrackUUID          = 11
	fEventCounterValue       = 30
	fEventDoubleCounterValue = 44

	// TrackEvent.Type
	typeSliceBegin = 1
	typeSliceEnd   = 2
	typeInstant    = 3
	typeCounter    = 4

	// DebugAnnotation
	fAnnotNameIID        = 1
	fAnnotUint           = 3
	fAnnotInt            = 4
	fAnnotDouble         = 5
	fAnnotString         = 6
	fAnnotStringValueIID = 17

	// InternedData
	fInternedCategories   = 1  // EventCategory
	fInternedEventNames   = 2  // EventName
	fInternedAnnotNames   = 3  // DebugAnnotationName
	fInternedAnnotStrings = 29 // InternedString

	// EventCategory, EventName, DebugAnnotationName, InternedString
	fInternedIID  = 1
	fInternedName = 2
)

// appendVarint appends v as a varint; unlike protowire.AppendVarint it
// inlines, and most values here are below 128.
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendVarintField appends a varint field; num is a constant, and the
// tag of fields below 16 is one byte.
func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if num < 16 {
		b = append(b, byte(num<<3))
	} else {
		b = appendVarint(b, uint64(num)<<3)
	}
	return appendVarint(b, v)
}

func appendBytesField[S ~string | ~[]byte](b []byte, num protowire.Number, s S) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendDoubleField(b []byte, num protowire.Number, v float64) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

// beginMessage appends the tag of an embedded message field and one byte
// for its length; endMessage sets the length once the message is written.
// It returns the offset to give endMessage.
func beginMessage(b []byte, num protowire.Number) ([]byte, int) {
	if num < 16 {
		b = append(b, byte(num<<3|2), 0)
	} else {
		b = appendVarint(b, uint64(num)<<3|2)
		b = append(b, 0)
	}
	return b, len(b) - 1
}

// endMessage completes the embedded message whose length byte is at
// b[at]: messages of 128 bytes or more need a longer varint, so the body
// moves up.
func endMessage(b []byte, at int) []byte {
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	k := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, k-1)...)
	copy(b[at+k:], b[at+1:at+1+n])
	protowire.AppendVarint(b[at:at], uint64(n))
	return b
}
