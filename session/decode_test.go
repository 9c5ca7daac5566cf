package session_test

import (
	"cmp"
	"slices"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/session"
)

// event is a decoded record, for tests.
type event struct {
	stream int
	class  *session.Class
	ts     uint64
	vals   []any
	trunc  uint8
}

// decodePacket decodes the CTF records of a packet with package ctf's
// record codec, the one trace readers use, rather than the session's own
// code: integers come back as int64 or uint64 (bools as uint64),
// floats as float64, strings and bytes as string.
func decodePacket(t *testing.T, s *session.Session, p session.Packet) []event {
	t.Helper()
	classes := s.Classes()
	var d ctf.RecordDecoder
	for _, c := range classes {
		if err := d.AddClasses(session.EventClassOf(c)); err != nil {
			t.Fatal(err)
		}
	}
	var out []event
	var ev ctf.Event
	for off := 0; off < len(p.Data); {
		n, err := d.Decode(p.Data[off:], &ev)
		if err != nil {
			t.Fatalf("record at offset %d: %v", off, err)
		}
		off += n
		e := event{stream: p.Stream, class: classes[ev.Class.ID-1], ts: ev.Cycles, trunc: ev.Truncated}
		for _, v := range ev.Fields {
			switch v.Kind {
			case ctf.Int:
				e.vals = append(e.vals, v.Int)
			case ctf.Uint:
				e.vals = append(e.vals, v.Uint)
			case ctf.Float:
				e.vals = append(e.vals, v.Float)
			default:
				e.vals = append(e.vals, string(v.Bytes))
			}
		}
		out = append(out, e)
	}
	return out
}

// inTimeOrder checks that each stream's events are in timestamp order
// and merges the streams by timestamp, as a trace reader's muxer does:
// a goroutine that moves to another CPU between two events records
// them in two streams, and the drain hands streams over one by one.
func inTimeOrder(t *testing.T, evs []event) []event {
	t.Helper()
	last := map[int]uint64{}
	for i, e := range evs {
		if e.ts < last[e.stream] {
			t.Errorf("event %d goes back in time in stream %d: %d after %d", i, e.stream, e.ts, last[e.stream])
		}
		last[e.stream] = e.ts
	}
	slices.SortStableFunc(evs, func(a, b event) int { return cmp.Compare(a.ts, b.ts) })
	return evs
}

// drainAll drains s and decodes every event, in timestamp order.
func drainAll(t *testing.T, s *session.Session) []event {
	t.Helper()
	var out []event
	err := s.Drain(func(p session.Packet) error {
		evs := decodePacket(t, s, p)
		if len(evs) != p.Events {
			t.Errorf("packet says %d events, holds %d", p.Events, len(evs))
		}
		if len(evs) > 0 && (evs[0].ts != p.BeginTS || evs[len(evs)-1].ts != p.EndTS) {
			t.Errorf("packet timestamps [%d, %d], events [%d, %d]", p.BeginTS, p.EndTS, evs[0].ts, evs[len(evs)-1].ts)
		}
		out = append(out, evs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return inTimeOrder(t, out)
}
