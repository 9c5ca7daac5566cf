package wire

import (
	"bytes"
	"testing"
)

// FuzzReadStream feeds arbitrary bytes to the client side of an event
// stream: the frame reader, the classes decoder and the record decoder
// must return errors, never panic or allocate without bound, whatever an
// agent (or something posing as one) sends.
func FuzzReadStream(f *testing.F) {
	var seed bytes.Buffer
	fw := NewFrameWriter(&seed)
	_ = fw.WriteJSON(FrameHello, Hello{Protocol: Version})
	_ = fw.WriteJSON(FrameClasses, Classes{Classes: []EventClass{{ID: 1, Name: "a:b", Truncation: true, Fields: []ClassField{
		{Name: "s", Type: "string"}, {Name: "n", Type: "int16"}, {Name: "b", Type: "bytes"}, {Name: "f", Type: "float32"}}}}})
	rec := []byte{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x', 0, 2, 0, 1, 0, 0, 0, 9, 0, 0, 0x80, 0x3f, 0}
	_ = fw.WritePacket(PacketHeader{Events: 1}, rec)
	_ = fw.WriteEmpty(FrameSync)
	_ = fw.WriteJSON(FrameEnd, End{Reason: EndStopped})
	f.Add(seed.Bytes())
	f.Add([]byte{'P', 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFrameReader(bytes.NewReader(data))
		dec := NewDecoder()
		for {
			frame, err := fr.Next()
			if err != nil {
				return
			}
			switch frame.Type {
			case FrameClasses:
				var cs Classes
				if frame.JSON(&cs) == nil && dec.Add(cs.Classes) == nil {
					for i := range cs.Classes {
						_, _ = cs.Classes[i].CTF()
					}
				}
			case FramePacket:
				if _, recs, err := frame.Packet(); err == nil {
					_ = dec.Decode(recs, func(r *Record) error {
						if len(r.Fields) != len(r.Class.Fields) {
							t.Fatalf("record of %s with %d fields", r.Class.Name, len(r.Fields))
						}
						return nil
					})
				}
			}
		}
	})
}
