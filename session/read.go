package session

import (
	"encoding/binary"
	"fmt"

	"github.com/tracemark/tracemark/internal/ring"
)

// Packet is a run of recorded events of one stream, ready to become a CTF
// packet: Data holds CTF event records back to back (see the record layout
// in encode.go), and the other fields fill the packet context.
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
// Classes of events in a packet are always in Classes() by the time emit
// runs, so a trace writer can add new classes to its metadata first.
func (s *Session) Drain(emit func(Packet) error) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	return s.buf.Drain(func(p ring.Packet) error {
		if err := s.countDelivered(p.Data); err != nil {
			return err
		}
		return emit(s.packet(p))
	})
}

// Snapshot hands a copy of what the buffers hold to emit without consuming
// it and without stopping recording: the flight recorder's view.
func (s *Session) Snapshot(emit func(Packet) error) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	seq := make([]uint64, len(s.streamSeq))
	return s.buf.Snapshot(func(p ring.Packet) error {
		out := s.packetInfo(p)
		out.Seq = seq[p.Shard]
		seq[p.Shard]++
		return emit(out)
	})
}

// packet numbers a drained packet in its stream.
func (s *Session) packet(p ring.Packet) Packet {
	out := s.packetInfo(p)
	out.Seq = s.streamSeq[p.Shard]
	s.streamSeq[p.Shard]++
	return out
}

func (s *Session) packetInfo(p ring.Packet) Packet {
	return Packet{
		Stream:    p.Shard,
		BeginTS:   uint64(p.BeginTS),
		EndTS:     uint64(p.EndTS),
		Events:    p.Records,
		Discarded: p.Discarded,
		Data:      p.Data,
	}
}

// countDelivered walks the records of a packet to count events per class.
func (s *Session) countDelivered(data []byte) error {
	var last *Class
	var n uint64
	flush := func() {
		if last != nil {
			last.delivered.Add(n)
		}
	}
	for off := 0; off < len(data); {
		if len(data)-off < headerSize {
			return fmt.Errorf("session %q: truncated record at offset %d", s.cfg.Name, off)
		}
		c := s.class(binary.LittleEndian.Uint16(data[off:]))
		if c == nil {
			return fmt.Errorf("session %q: record of unknown class %d at offset %d",
				s.cfg.Name, binary.LittleEndian.Uint16(data[off:]), off)
		}
		size := c.layout.recordLen(data[off:])
		if size < 0 {
			return fmt.Errorf("session %q: malformed %s record at offset %d", s.cfg.Name, c.Marker.Name(), off)
		}
		if c != last {
			flush()
			last, n = c, 0
		}
		n++
		off += size
	}
	flush()
	return nil
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
	// Filtered counts events a filter rejected.
	Filtered uint64
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
	Truncated uint64
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	rs := s.buf.Stats()
	st := Stats{
		Recorded:  rs.Records,
		Discarded: rs.Discarded,
		Filtered:  s.filtered.Load(),
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
			Truncated: c.truncated.Load(),
		})
	}
	return st
}
