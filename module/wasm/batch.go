package wasm

import (
	"encoding/binary"

	"github.com/tetratelabs/wazero/api"
	"github.com/tracemark/tracemark/module"
)

// WithoutEventBuffer makes the host fire each of the module's events
// with a host call, as for a module without an event buffer, instead of
// taking its buffer (module.ExportEvents): each event is then delivered,
// and timestamped, when the module fires it, not when its buffer is
// delivered, at the cost of a host call per event (see the package
// documentation, Cost).
func WithoutEventBuffer() LoadOption {
	return loadOptionFunc(func(c *loadConfig) { c.NoEventBuffer = true })
}

// eventBuffer is where a module batches its events (the
// tracemark_events extension of ABI v1): n bytes at ptr of its memory, an
// 8-byte header (u32le bytes of records, u32le number of records) and
// the records. Used with callMu held.
type eventBuffer struct {
	ptr, n uint32 // n == 0: the module fires each event with a host call
}

// Sizes of the event buffer's header and of a record's header.
const (
	batchHeader  = 8
	recordHeader = 8
)

// setEvents records the event buffer that tracemark_events returned
// (ptr<<32 | len). A buffer outside the module's memory, too small for
// one record or over module.MaxEventBufferBytes is an ABI violation, and
// the module is left firing each event with a host call (its SDK learns
// nothing: it batches only once the host asked for the buffer, so it is
// the module's loss). Called with callMu held.
func (i *instance) setEvents(res uint64) {
	p, n := uint32(res>>32), uint32(res)
	if n == 0 {
		return
	}
	if n < batchHeader+recordHeader {
		i.violate(module.ResultInvalid, ErrMalformed, "%s returned an event buffer of %d bytes, too small for a record", module.ExportEvents, n)
		return
	}
	if n > module.MaxEventBufferBytes {
		i.violate(module.ResultTooBig, ErrTooLarge, "%s returned an event buffer of %d bytes, limit %d", module.ExportEvents, n, module.MaxEventBufferBytes)
		return
	}
	b, ok := read(i.memory(i.mod), p, n)
	if !ok {
		i.violate(module.ResultFault, ErrOutOfBounds, "%s returned %d bytes of event buffer at %#x, outside memory", module.ExportEvents, n, p)
		return
	}
	clear(b[:batchHeader])
	i.events = eventBuffer{ptr: p, n: n}
}

// drainEvents delivers the records in the module's event buffer, in
// order, and empties it: at the module's flush (fire with handle 0) and
// after every call into the module returns, trapped or not, so that an
// event is delivered before the instance serves another call or dies.
// Each record passes the checks of a fire call (handle, budget, schema);
// a bad record, or a header that does not describe the records, is an
// ABI violation, and every record it makes unreadable is counted as
// fired and dropped. Called with callMu held, the module suspended.
func (i *instance) drainEvents(mod api.Module) {
	e := i.events
	if e.n == 0 || mod == nil {
		return
	}
	mem := i.memory(mod)
	if mem == nil {
		return
	}
	// The memory never shrinks: the buffer is still in it.
	buf, ok := mem.Read(e.ptr, e.n)
	if !ok {
		return
	}
	used := binary.LittleEndian.Uint32(buf)
	count := binary.LittleEndian.Uint32(buf[4:])
	if used == 0 && count == 0 {
		return
	}
	// Empty the buffer first: the probes below cannot refill it (they
	// must not call the module), and a violation leaves it empty.
	clear(buf[:batchHeader])
	i.syncFlags(mod, false)
	// A record takes recordHeader bytes at least: no header can claim
	// more records than its buffer holds.
	room := e.n - batchHeader
	count = min(count, room/recordHeader)
	if used > room {
		i.pending.fired += uint64(count)
		i.pending.dropped += uint64(count)
		i.violate(module.ResultFault, ErrOutOfBounds, "event buffer claims %d bytes of records, it holds %d", used, room)
		return
	}
	recs := buf[batchHeader : batchHeader+used]
	var n uint32
	for len(recs) > 0 {
		if len(recs) < recordHeader {
			i.lostRecords(max(1, count-min(count, n)), "event buffer: %d bytes after record %d", len(recs), n)
			return
		}
		h := binary.LittleEndian.Uint32(recs)
		l := binary.LittleEndian.Uint32(recs[4:])
		if l > uint32(len(recs)-recordHeader) {
			i.lostRecords(max(1, count-min(count, n)), "event buffer: record %d of %d bytes, %d left", n, l, len(recs)-recordHeader)
			return
		}
		args := recs[recordHeader : recordHeader+l : recordHeader+l]
		recs = recs[recordHeader+l:]
		n++
		if !i.fireRecord(h, args) {
			i.pending.fired++
			i.pending.dropped++
		}
	}
	if n != count {
		i.lostRecords(count-min(count, n), "event buffer: header says %d records, it holds %d", count, n)
	}
}

// lostRecords counts the records of a corrupt buffer that could not be
// read as fired and dropped (the header's count of them, and at least
// the corrupt one), and records the violation.
func (i *instance) lostRecords(lost uint32, format string, args ...any) {
	i.pending.fired += uint64(lost)
	i.pending.dropped += uint64(lost)
	i.violate(module.ResultInvalid, ErrMalformed, format, args...)
}

// fireRecord fires one batched event as hostFire fires one event, and
// reports false for a record with an unknown handle (which hostFire
// does not count as fired). Called with callMu held.
func (i *instance) fireRecord(h uint32, args []byte) bool {
	ms := i.m.slots()
	if h-1 >= uint32(len(ms)) {
		i.violate(module.ResultBadMark, ErrUnknownMarker, "event buffer: record with handle %d; the module defined %d markers", int32(h), len(ms))
		return false
	}
	s := ms[h-1]
	i.pending.fired++
	if !s.d.Enabled() {
		return true
	}
	if !i.budget.take() {
		i.pending.dropped++
		return true
	}
	if len(args) > module.MaxArgsBytes {
		i.violate(module.ResultTooBig, ErrTooLarge, "%s: argument buffer of %d bytes, limit %d", s.d.Info().Name(), len(args), module.MaxArgsBytes)
		i.pending.dropped++
		return true
	}
	if r := i.fire(s, args); int32(r) < 0 {
		i.pending.dropped++
	}
	return true
}
