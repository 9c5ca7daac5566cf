package session_test

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/tracemark/tracemark/marker"
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

// decodePacket decodes the CTF records of a packet independently of the
// session's own code, following the layout documented in encode.go.
func decodePacket(t *testing.T, s *session.Session, p session.Packet) []event {
	t.Helper()
	classes := s.Classes()
	var out []event
	d := p.Data
	for len(d) > 0 {
		id := binary.LittleEndian.Uint16(d)
		// A truncated record has the class id with the top bit set, and
		// the trailer; the others have neither.
		twin := id&0x8000 != 0
		id &^= 0x8000
		if id == 0 || int(id) > len(classes) {
			t.Fatalf("record of unknown class %d", id)
		}
		c := classes[id-1]
		ev := event{stream: p.Stream, class: c, ts: binary.LittleEndian.Uint64(d[2:])}
		d = d[10:]
		variable := false
		for i := range c.Marker.NumFields() {
			switch k := c.Marker.Field(i).Kind; k {
			case marker.KindInt8:
				ev.vals = append(ev.vals, int64(int8(d[0])))
				d = d[1:]
			case marker.KindInt16:
				ev.vals = append(ev.vals, int64(int16(binary.LittleEndian.Uint16(d))))
				d = d[2:]
			case marker.KindInt32:
				ev.vals = append(ev.vals, int64(int32(binary.LittleEndian.Uint32(d))))
				d = d[4:]
			case marker.KindInt64, marker.KindDuration:
				ev.vals = append(ev.vals, int64(binary.LittleEndian.Uint64(d)))
				d = d[8:]
			case marker.KindUint8, marker.KindBool:
				ev.vals = append(ev.vals, uint64(d[0]))
				d = d[1:]
			case marker.KindUint16:
				ev.vals = append(ev.vals, uint64(binary.LittleEndian.Uint16(d)))
				d = d[2:]
			case marker.KindUint32:
				ev.vals = append(ev.vals, uint64(binary.LittleEndian.Uint32(d)))
				d = d[4:]
			case marker.KindUint64:
				ev.vals = append(ev.vals, binary.LittleEndian.Uint64(d))
				d = d[8:]
			case marker.KindFloat32:
				ev.vals = append(ev.vals, float64(math.Float32frombits(binary.LittleEndian.Uint32(d))))
				d = d[4:]
			case marker.KindFloat64:
				ev.vals = append(ev.vals, math.Float64frombits(binary.LittleEndian.Uint64(d)))
				d = d[8:]
			case marker.KindString:
				variable = true
				n := 0
				for d[n] != 0 {
					n++
				}
				ev.vals = append(ev.vals, string(d[:n]))
				d = d[n+1:]
			case marker.KindBytes:
				variable = true
				n := int(binary.LittleEndian.Uint32(d))
				ev.vals = append(ev.vals, string(d[4:4+n]))
				d = d[4+n:]
			}
		}
		if twin {
			if !variable {
				t.Fatalf("truncated record of %s, which has no string or bytes field", c.Marker.Name())
			}
			ev.trunc = d[0]
			d = d[1:]
			if ev.trunc == 0 {
				t.Fatalf("truncated record of %s with an empty _truncated mask", c.Marker.Name())
			}
		}
		out = append(out, ev)
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
