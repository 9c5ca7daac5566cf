package session

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/clock"
	"github.com/tracemark/tracemark/internal/ring"
)

// Packet is a run of recorded events of one stream, ready to become a CTF
// packet: Data holds CTF event records back to back (see the record layout
// in encode.go, and package ctf, whose codec reads them), and the other fields fill the packet context.
type Packet struct {
	// Stream is the buffer shard the events were recorded on.
	Stream int
	// Seq numbers the packets of a stream consecutively from 0.
	Seq uint64
	// BeginTS and EndTS are the first and last event's timestamps (ns).
	BeginTS, EndTS uint64
	// Events is the number of records in Data.
	Events int
	// Discarded is the stream's cumulative count of discarded events
	// (CTF events_discarded).
	Discarded uint64
	// Data aliases the session's buffer: valid only during the callback.
	Data []byte
}

// Drain hands every recorded event not yet read to emit, in packets, and
// consumes them. It never blocks recording. After Stop, one Drain gets
// everything that was recorded. Only one Drain or Snapshot runs at a time.
//
// Every stream's last packet of a Drain carries the stream's cumulative
// count of discarded events as of the end of the Drain: when events were
// lost after the last packet that holds events, Drain ends the stream with
// an empty packet that carries the count (see endStreams). A trace written
// from Drain's packets therefore counts every lost event up to its last
// Drain, and after Stop, all of them.
//
// Classes of events in a packet are always in Classes() by the time emit
// runs, so a trace writer can add new classes to its metadata first.
func (s *Session) Drain(emit func(Packet) error) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.freed {
		return fmt.Errorf("session %q: drain: %w: destroyed", s.cfg.Name, ErrState)
	}
	// Quiescent before the drain starts, so that the drain gets every
	// event: checked after it, a Stop in between would leave events
	// recorded before the end-of-stream packets' timestamps for the next
	// Drain.
	quiescent := s.quiescent()
	err := s.buf.Drain(func(p ring.Packet) error {
		out, err := s.finish(p, true)
		if err != nil {
			return err
		}
		return handOut(s.streamSeq, s.ends, out, emit)
	})
	if err != nil {
		return err
	}
	return s.endStreams(s.streamSeq, s.ends, quiescent, emit)
}

// Wait blocks until the session's buffers hold a full packet to drain (a
// recording goroutine filled a sub-buffer), until timeout elapses (if
// positive) or until stop is closed, and reports whether a full packet is
// waiting. A reader that drains in a loop calls it between Drains: the
// recording goroutines wake it, at no cost to them but when they switch
// sub-buffers while it sleeps, so it keeps up with them however fast they
// fill the buffers, and the timeout drains the partial packets of a
// quiet buffer. Only one goroutine may wait at a time.
func (s *Session) Wait(stop <-chan struct{}, timeout time.Duration) bool {
	return s.buf.Wait(stop, timeout)
}

// Snapshot hands a copy of what the buffers hold to emit without consuming
// it and without stopping recording: the flight recorder's view. Like
// Drain, it ends every stream with the cumulative count of discarded
// (overwritten or dropped) events. The copy takes one shard's worth of
// memory while Snapshot runs, from the recording memory budget: if it
// does not fit, Snapshot returns an error wrapping ErrMemoryBudget.
func (s *Session) Snapshot(emit func(Packet) error) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.freed {
		return fmt.Errorf("session %q: snapshot: %w: destroyed", s.cfg.Name, ErrState)
	}
	n := int64(s.buf.SnapshotBytes())
	if err := charge(s, n, fmt.Sprintf("a snapshot of session %q", s.cfg.Name)); err != nil {
		return err // it names the session
	}
	defer release(s, n)
	seq := make([]uint64, len(s.streamSeq))
	ends := s.newEnds()
	err := s.buf.Snapshot(func(p ring.Packet) error {
		out, err := s.finish(p, false)
		if err != nil {
			return err
		}
		return handOut(seq, ends, out, emit)
	})
	if err != nil {
		return err
	}
	// A snapshot is a trace of its own: records committed after the copy
	// are not in it, so its streams may end at the current time.
	return s.endStreams(seq, ends, true, emit)
}

// streamEnd is what the last packet handed out for a stream said.
type streamEnd struct {
	discarded uint64 // its events_discarded
	ts        uint64 // its end timestamp
}

// newEnds returns the stream ends of a reader that handed out nothing yet:
// the session's creation time precedes every event.
func (s *Session) newEnds() []streamEnd {
	ends := make([]streamEnd, s.buf.Shards()+1) // and the overflow stream
	for i := range ends {
		ends[i].ts = uint64(s.anchorMono)
	}
	return ends
}

// handOut numbers p as the next packet of its stream and hands it to emit.
//
// A packet's count of discarded events is the shard's count when its
// sub-buffer was sealed, which can be smaller than what an empty packet of
// an earlier Drain already said (the writer kept filling the sub-buffer,
// then sealed it, while that Drain ended the stream): the count then stays
// at the larger value, so that it never decreases along the stream, and
// the total stays exact.
//
// Babeltrace takes the count of a stream's first packet as its starting
// point and reports only what it grows by, so a stream whose first packet
// would carry losses (overwritten before the first packet read, or lost
// before any event of the stream was kept) starts with an empty packet
// that counts none.
func handOut(seq []uint64, ends []streamEnd, p Packet, emit func(Packet) error) error {
	i, e := p.Stream, &ends[p.Stream]
	p.Discarded = max(p.Discarded, e.discarded)
	if seq[i] == 0 && p.Discarded > 0 {
		seq[i]++
		if err := emit(Packet{Stream: i, BeginTS: p.BeginTS, EndTS: p.BeginTS}); err != nil {
			return err
		}
	}
	p.Seq = seq[i]
	seq[i]++
	e.discarded, e.ts = p.Discarded, p.EndTS
	return emit(p)
}

// endStreams hands emit an empty packet for every stream whose cumulative
// count of discarded events is larger than its latest packet said, as
// LTTng does when it stops: otherwise events lost after a stream's last
// packet would be in no trace. Events written on a P without a shard are
// counted in the overflow stream (number Shards()), which then has empty
// packets only until the overflow shard exists.
//
// The empty packet's timestamps are the stream's latest packet's end,
// since a record of an earlier instant may still be committed and come
// out of the next Drain; once the session is quiescent (stopped: no event
// can be recorded any more), they are the current time, so that Babeltrace
// places the losses between the last event and the end of the recording.
func (s *Session) endStreams(seq []uint64, ends []streamEnd, quiescent bool, emit func(Packet) error) error {
	var now uint64
	if quiescent {
		now = uint64(clock.Now())
	}
	for i := range ends {
		d := s.buf.Discarded(i)
		e := &ends[i]
		if d <= e.discarded {
			continue
		}
		ts := max(e.ts, now)
		if err := handOut(seq, ends, Packet{Stream: i, BeginTS: ts, EndTS: ts, Discarded: d}, emit); err != nil {
			return err
		}
	}
	return nil
}

// finish makes a packet of the ring's records ready to hand out. Records
// are written with raw clock ticks (clock.Ticks, cheaper than converting on
// the recording path), so finish walks them and rewrites each timestamp in
// nanoseconds, in place; when draining, it also counts them per class.
//
// A drained packet whose emit failed is not consumed and comes back in the
// next Drain, or in a Snapshot's copy, with a prefix already converted:
// converted[shard] remembers how far the records of the sub-buffer being
// drained were converted, so that no timestamp is converted twice and no
// event counted twice.
func (s *Session) finish(p ring.Packet, drain bool) (Packet, error) {
	mark := &s.converted[p.Shard]
	done := 0 // bytes of p.Data already converted
	if mark.seq == p.Seq && mark.end > p.Offset {
		done = mark.end - p.Offset
	}
	data := p.Data
	generic := s.genericWalk
	var c, last *Class
	var id uint16
	var n uint64
	flush := func() {
		if last != nil && drain {
			last.delivered.Add(n)
		}
	}
	lastOff := 0
	for off := 0; off < len(data); {
		if len(data)-off < headerSize {
			return Packet{}, fmt.Errorf("session %q: truncated record at offset %d", s.cfg.Name, off)
		}
		// Records come in runs of one class: the class is looked up
		// once per run.
		if next := binary.LittleEndian.Uint16(data[off:]); c == nil || next != id {
			if c, id = s.class(next), next; c == nil {
				return Packet{}, fmt.Errorf("session %q: record of unknown class %d at offset %d", s.cfg.Name, id, off)
			}
		}
		// A record without strings or bytes has its class's size: the
		// drain walks every record, so only the others are measured.
		size := c.layout.fixed
		if c.layout.variable {
			ok := false
			if generic {
				size, ok = genericSize(data[off:], c)
			} else {
				size, ok = c.layout.recordSize(data[off:], id&twinBit != 0)
			}
			if !ok {
				// ctf's walk, which gives the same sizes, words the
				// error (and has the last word if they ever disagree).
				var err error
				if size, err = ctf.RecordSizeFrom(data[off:], &c.ec, int(c.layout.ops[0].idx), c.layout.restOff); err != nil {
					return Packet{}, fmt.Errorf("session %q: malformed %s record at offset %d: %w", s.cfg.Name, c.Marker.Name(), off, err)
				}
			}
		} else if size > len(data)-off {
			return Packet{}, fmt.Errorf("session %q: malformed %s record at offset %d: %w: %d bytes left, the record takes %d",
				s.cfg.Name, c.Marker.Name(), off, ctf.ErrCorrupt, len(data)-off, size)
		}
		if off >= done {
			ts := data[off+timestampOffset:]
			binary.LittleEndian.PutUint64(ts, uint64(clock.ToNanos(int64(binary.LittleEndian.Uint64(ts)))))
			if c != last {
				flush()
				last, n = c, 0
			}
			n++
		}
		lastOff = off
		off += size
	}
	flush()
	if drain {
		*mark = convertedMark{seq: p.Seq, end: p.Offset + len(data)}
	}
	return Packet{
		Stream:    p.Shard,
		BeginTS:   binary.LittleEndian.Uint64(data[timestampOffset:]),
		EndTS:     binary.LittleEndian.Uint64(data[lastOff+timestampOffset:]),
		Events:    p.Records,
		Discarded: p.Discarded,
		Data:      data,
	}, nil
}

// genericSize is the size of c's record at the start of b by ctf's walk.
func genericSize(b []byte, c *Class) (int, bool) {
	// The fields before the first op are 8-byte words at fixed
	// offsets: the walk starts after them.
	n, err := ctf.RecordSizeFrom(b, &c.ec, int(c.layout.ops[0].idx), c.layout.restOff)
	return n, err == nil
}

// convertedMark says that the records of a stream's sub-buffer seq have
// nanosecond timestamps up to byte end.
type convertedMark struct {
	seq uint64
	end int
}

// Stats are a session's counters. They are exact: once the session is
// stopped and drained, for every marker, Delivered + Discarded + Filtered
// equals the number of times it fired while the session recorded it.
type Stats struct {
	// Recorded counts events written into the buffers (including any later
	// overwritten in overwrite mode).
	Recorded uint64
	// Discarded counts events lost: dropped because the buffer was full
	// (discard mode) or overwritten before being read (overwrite mode).
	Discarded uint64
	// Unsharded counts the discarded events (included in Discarded) that
	// fired on a P without a buffer shard, GOMAXPROCS having been raised
	// after New, before the overflow shard was allocated or while the
	// memory budget refused it.
	Unsharded uint64
	// Filtered counts events a filter rejected.
	Filtered uint64
	// OverCost counts the events, among Filtered, that were dropped because
	// a filter reached its run-time cost limit and was stopped.
	OverCost uint64
	// Truncated counts events with a string or byte field cut to the cap.
	Truncated uint64
	// Bytes counts bytes recorded.
	Bytes uint64
	// Delivered counts events handed to Drain's callback.
	Delivered uint64
	// Markers has per-marker counts, in class id order.
	Markers []MarkerStats
}

// MarkerStats are the counters of one marker in a session.
type MarkerStats struct {
	Name string
	// Delivered counts events of this marker handed to Drain's callback.
	Delivered uint64
	// Discarded counts events of this marker dropped because the buffer
	// was full. (Events overwritten in overwrite mode are only counted for
	// the session as a whole.)
	Discarded uint64
	Filtered  uint64
	// OverCost counts the events, among Filtered, that a filter stopped at
	// its run-time cost limit dropped.
	OverCost  uint64
	Truncated uint64
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	rs := s.buf.Stats()
	st := Stats{
		Recorded:  rs.Records,
		Discarded: rs.Discarded,
		Unsharded: rs.Unsharded,
		Filtered:  s.filtered.Load(),
		OverCost:  s.overCost.Load(),
		Truncated: s.truncated.Load(),
		Bytes:     rs.Bytes,
		Delivered: rs.Consumed,
	}
	for _, c := range s.Classes() {
		st.Markers = append(st.Markers, MarkerStats{
			Name:      c.Marker.Name(),
			Delivered: c.delivered.Load(),
			Discarded: c.discarded.Load(),
			Filtered:  c.filtered.Load(),
			OverCost:  c.overCost.Load(),
			Truncated: c.truncated.Load(),
		})
	}
	return st
}
