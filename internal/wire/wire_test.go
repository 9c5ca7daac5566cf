package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/tracemark/tracemark/ctf"
)

func TestSocketNames(t *testing.T) {
	for _, tt := range []struct {
		name string
		pid  int
	}{{"1234.sock", 1234}, {"1.sock", 1}, {"0.sock", 0}, {"01.sock", 0}, {"-1.sock", 0}, {".sock", 0}, {"12.socket", 0}, {"99999999999.sock", 0}} {
		pid, ok := ParseSocketName(tt.name)
		if ok != (tt.pid > 0) || pid != tt.pid && ok {
			t.Errorf("ParseSocketName(%q) = %d, %v", tt.name, pid, ok)
		}
	}
	if got := socketDirs("/run/user/7", 7); len(got) != 2 || got[0] != "/run/user/7/tracemark" || got[1] != "/tmp/tracemark-7" {
		t.Errorf("socketDirs with XDG = %v", got)
	}
	if got := socketDirs("relative", 7); len(got) != 1 || got[0] != "/tmp/tracemark-7" {
		t.Errorf("socketDirs without XDG = %v", got)
	}
}

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	ec := ctf.EventClass{ID: 1, Name: "http:done", Truncation: true, TruncatedID: 0x8001, Fields: []ctf.Field{
		{Name: "status", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}},
		{Name: "path", Type: ctf.FieldType{Kind: ctf.String}},
		{Name: "ok", Type: ctf.FieldType{Kind: ctf.Uint, Bits: 8}},
		{Name: "body", Type: ctf.FieldType{Kind: ctf.Bytes}},
		{Name: "ratio", Type: ctf.FieldType{Kind: ctf.Float, Bits: 32}},
	}}
	wc := ClassFromCTF(ec, []string{"int64", "string", "bool", "bytes", "float32"})
	var recs []byte
	var err error
	for i := range 3 {
		vals := []ctf.Value{ctf.IntValue(int64(-i)), ctf.StringValue("/x"), ctf.UintValue(1), ctf.BytesValue([]byte{byte(i)}), ctf.FloatValue(0.5)}
		if recs, err = ctf.AppendRecord(recs, &ec, uint64(100+i), vals, uint8(i%2)*2); err != nil { // the second one truncated
			t.Fatal(err)
		}
	}
	must(t, fw.WriteJSON(FrameHello, Hello{Protocol: Version, PID: 42}))
	must(t, fw.WriteJSON(FrameClasses, Classes{Classes: []EventClass{wc}}))
	must(t, fw.WritePacket(PacketHeader{Stream: 3, Events: 3, Seq: 9, BeginTS: 100, EndTS: 102, Discarded: 5}, recs))
	must(t, fw.WriteJSON(FrameEnd, End{Reason: EndStopped}))
	buf.Write([]byte{'Z', 0, 0, 0, 1, 0, 0, 0, 'x'}) // an unknown frame type: skippable

	fr := NewFrameReader(&buf)
	dec := NewDecoder()
	var types []FrameType
	var got []string
	for {
		f, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		types = append(types, f.Type)
		switch f.Type {
		case FrameClasses:
			var cs Classes
			must(t, f.JSON(&cs))
			back, err := cs.Classes[0].CTF()
			must(t, err)
			if back.Name != ec.Name || len(back.Fields) != 5 || back.Fields[4].Type != ec.Fields[4].Type || !back.Truncation || back.TruncatedID != 0x8001 || back.Fields[2].Meaning != ctf.Boolean {
				t.Errorf("class round trip: %+v", back)
			}
			must(t, dec.Add(cs.Classes))
		case FramePacket:
			h, data, err := f.Packet()
			must(t, err)
			if h != (PacketHeader{Stream: 3, Events: 3, Seq: 9, BeginTS: 100, EndTS: 102, Discarded: 5}) {
				t.Errorf("packet header = %+v", h)
			}
			must(t, dec.Decode(data, func(r *Record) error {
				s := r.Class.Name
				for _, v := range r.Fields {
					s += " " + v.String()
				}
				if r.Class.ID != 1 {
					t.Errorf("record of class %d, want 1 (the twin is the same class)", r.Class.ID)
				}
				if want := uint8(len(got)%2) * 2; r.Truncated != want {
					t.Errorf("record %d: truncated = %d, want %d", len(got), r.Truncated, want)
				}
				got = append(got, s)
				return nil
			}))
		}
	}
	if string(types) != "HCPEZ" {
		t.Errorf("frame types %q", types)
	}
	if len(got) != 3 || got[2] != `http:done -2 "/x" 1 02 0.5` {
		t.Errorf("records = %q", got)
	}
}

func TestFrameReaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"cut header", []byte{'P', 0, 0}, io.ErrUnexpectedEOF},
		{"cut payload", []byte{'P', 0, 0, 0, 10, 0, 0, 0, 1, 2}, io.ErrUnexpectedEOF},
		{"reserved", []byte{'P', 1, 0, 0, 0, 0, 0, 0}, ErrFrame},
		{"too large", []byte{'P', 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, ErrFrame},
	}
	for _, tt := range tests {
		_, err := NewFrameReader(bytes.NewReader(tt.in)).Next()
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestDecoderRejectsMalformedRecords(t *testing.T) {
	d := NewDecoder()
	must(t, d.Add([]EventClass{{ID: 1, Name: "a:b", Fields: []ClassField{{Name: "s", Type: "string"}, {Name: "n", Type: "uint16"}}}}))
	if err := d.Add([]EventClass{{ID: 2, Name: "a:c", Fields: []ClassField{{Name: "x", Type: "int7"}}}}); err == nil {
		t.Error("class with an int7 field accepted")
	}
	ok := []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'h', 'i', 0, 7, 0}
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"unknown class", append([]byte{9, 0}, ok[2:]...)},
		{"short header", ok[:5]},
		{"unterminated string", ok[:12]},
		{"short integer", ok[:14]},
	} {
		if err := d.Decode(tt.data, func(*Record) error { return nil }); !errors.Is(err, ErrFrame) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	n := 0
	must(t, d.Decode(ok, func(r *Record) error { n++; return nil }))
	if n != 1 {
		t.Errorf("decoded %d records", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Swap hands over the last frame's buffer: the frame stays intact while
// the next ones are read, into the spare if it is big enough.
func TestFrameReaderSwap(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	for _, s := range []string{"first", "second", "a third, longer than the spare"} {
		if err := fw.WriteBytes(FrameGoTrace, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	fr := NewFrameReader(&buf)
	f1, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	spare := make([]byte, 0, 8)
	kept := fr.Swap(spare)
	if &kept[0] != &f1.Payload[0] {
		t.Fatal("Swap did not return the buffer of the last frame")
	}
	f2, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if string(f1.Payload) != "first" || string(f2.Payload) != "second" {
		t.Errorf("frames %q, %q after Swap, want first, second", f1.Payload, f2.Payload)
	}
	if &f2.Payload[0] != &spare[:1][0] {
		t.Error("the next frame was not read into the spare")
	}
	fr.Swap(nil)
	if f3, err := fr.Next(); err != nil || string(f3.Payload) != "a third, longer than the spare" || string(f2.Payload) != "second" {
		t.Errorf("third frame %q, %v; second now %q", f3.Payload, err, f2.Payload)
	}
}
