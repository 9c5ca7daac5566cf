package otlp

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/tracemark/tracemark/ctf"
)

// SpanRule says how the events of a class become spans, as their markers
// declare (marker.SpanDuration, marker.SpanEnd). The events are exported
// as log records too.
type SpanRule struct {
	// Duration names a duration field: each event is a span that ends at
	// the event's timestamp and lasted that long.
	Duration string
	// Start names the class (marker) whose events start the spans that
	// this class's events end; Keys are the fields, present in both,
	// whose equal values pair an end with its start. The start class must
	// name the same keys in its StartKeys.
	Start string
	Keys  []string
}

// MaxPendingStarts bounds the span starts waiting for their end; starts
// beyond it are not paired and are counted in Stats.Unpaired.
const MaxPendingStarts = 1 << 16

// pendingStart is a span start waiting for its end.
type pendingStart struct {
	timeNS int64
	names  []string // attribute keys, to leave out those the end has too
	attrs  [][]byte // encoded KeyValue fields of the span
}

// spanInfo is what the exporter works out once per class.
type spanInfo struct {
	durIdx   int   // index of the duration field, or -1
	keyIdx   []int // indices of the pairing keys (ends and starts)
	traceIdx int   // index of a trace_id field, or -1
	spanIdx  int   // index of a span_id field, or -1
	ok       bool  // the rule's fields exist
}

func newSpanInfo(c *Class) *spanInfo {
	si := &spanInfo{durIdx: -1, traceIdx: -1, spanIdx: -1, ok: true}
	index := func(name string) int {
		for i, f := range c.Fields {
			if f.Name == name {
				return i
			}
		}
		return -1
	}
	for i, f := range c.Fields {
		switch f.Kind {
		case kindTraceID:
			if si.traceIdx < 0 {
				si.traceIdx = i
			}
		case kindSpanID:
			if si.spanIdx < 0 {
				si.spanIdx = i
			}
		}
	}
	keys := c.StartKeys
	if c.Span != nil {
		keys = c.Span.Keys
		if c.Span.Duration != "" {
			si.durIdx = index(c.Span.Duration)
			si.ok = si.durIdx >= 0
		}
	}
	for _, k := range keys {
		i := index(k)
		if i < 0 {
			si.ok = false
		}
		si.keyIdx = append(si.keyIdx, i)
	}
	return si
}

// pairKey appends the pairing key of an event: the start class name and
// the key values.
func pairKey(b []byte, start string, si *spanInfo, vals []ctf.Value) []byte {
	b = append(b, start...)
	b = append(b, 0)
	for _, i := range si.keyIdx {
		if i < 0 || i >= len(vals) {
			continue
		}
		v := vals[i]
		b = append(b, byte(v.Kind))
		switch v.Kind {
		case ctf.Int:
			b = binary.LittleEndian.AppendUint64(b, uint64(v.Int))
		case ctf.Uint:
			b = binary.LittleEndian.AppendUint64(b, v.Uint)
		case ctf.Float:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float)) // 1.2 and 1.7 are different keys
		default:
			b = binary.AppendUvarint(b, uint64(len(v.Bytes)))
			b = append(b, v.Bytes...)
		}
	}
	return b
}

// spans handles the span side of an event: remembers a start, or emits
// the span an event ends. Call with mu held.
func (e *Exporter) spans(c *prepared, timeNS int64, vals []ctf.Value, truncated uint8) {
	si := c.span
	if !si.ok {
		return
	}
	if c.StartKeys != nil {
		e.key = pairKey(e.key[:0], c.Name, si, vals)
		if _, dup := e.starts[string(e.key)]; !dup && len(e.starts) >= MaxPendingStarts {
			e.unpaired.Add(1)
		} else {
			ps := pendingStart{timeNS: timeNS}
			for i, f := range c.Fields {
				if i >= len(vals) || f.Kind == kindTraceID || f.Kind == kindSpanID {
					continue
				}
				e.scratch = appendAnyValue(e.scratch[:0], f.Kind, vals[i])
				ps.names = append(ps.names, f.Name)
				ps.attrs = append(ps.attrs, appendKeyValue(nil, spanAttributes, f.Name, e.scratch))
			}
			if e.starts == nil {
				e.starts = map[string]pendingStart{}
			}
			e.starts[string(e.key)] = ps
		}
	}
	if c.Span == nil {
		return
	}
	start := timeNS
	var ps pendingStart
	switch {
	case si.durIdx >= 0:
		start = timeNS - vals[si.durIdx].Int
	case c.Span.Start != "":
		e.key = pairKey(e.key[:0], c.Span.Start, si, vals)
		var found bool
		ps, found = e.starts[string(e.key)]
		if !found {
			e.unpaired.Add(1)
			return
		}
		delete(e.starts, string(e.key))
		start = ps.timeNS
	default:
		return
	}
	b := e.admit(sigTraces)
	if b == nil {
		return
	}
	var traceID [16]byte
	var spanID, parent [8]byte
	if si.traceIdx >= 0 && len(vals[si.traceIdx].Bytes) == 16 {
		copy(traceID[:], vals[si.traceIdx].Bytes)
		if si.spanIdx >= 0 && len(vals[si.spanIdx].Bytes) == 8 {
			copy(parent[:], vals[si.spanIdx].Bytes)
		}
	} else {
		binary.LittleEndian.PutUint64(traceID[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(traceID[8:], rand.Uint64())
	}
	binary.LittleEndian.PutUint64(spanID[:], rand.Uint64()|1)
	rec := e.rec[:0]
	rec = appendBytesField(rec, spanTraceID, traceID[:])
	rec = appendBytesField(rec, spanSpanID, spanID[:])
	if parent != ([8]byte{}) {
		rec = appendBytesField(rec, spanParentID, parent[:])
	}
	rec = appendBytesField(rec, spanName, c.Name)
	rec = appendUintField(rec, spanKind, spanKindIntern)
	rec = appendFixed64(rec, spanStart, uint64(start))
	rec = appendFixed64(rec, spanEnd, uint64(timeNS))
	rec, e.scratch = appendAttributes(rec, e.scratch, spanAttributes, c, vals, truncated)
	for i, a := range ps.attrs {
		if c.fieldIndex(ps.names[i]) < 0 {
			rec = append(rec, a...)
		}
	}
	e.rec = rec
	e.add(b, c.scopeID)
}

func (c *Class) fieldIndex(name string) int {
	for i, f := range c.Fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}
