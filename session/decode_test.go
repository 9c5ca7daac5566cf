package session_test

import (
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

// drainAll drains s and decodes every event.
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
	return out
}
