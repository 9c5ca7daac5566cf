package wire

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tracemark/tracemark/ctf"
)

// An agent that puts the bitmask on every record sends no truncated_id:
// the decoder then reads the bitmask from every record.
func TestDecoderWithoutTwin(t *testing.T) {
	var c EventClass
	if err := json.Unmarshal([]byte(`{"id":3,"name":"a","truncation":true,"fields":[{"name":"s","type":"string","kind":"string"}]}`), &c); err != nil {
		t.Fatal(err)
	}
	ec, err := c.CTF()
	if err != nil || ec.TruncatedID != 3 {
		t.Fatalf("CTF() = %+v, %v; want TruncatedID 3 (the bitmask on every record)", ec, err)
	}
	recs, _ := ctf.AppendRecord(nil, &ec, 1, []ctf.Value{ctf.StringValue("x")}, 0)
	recs, _ = ctf.AppendRecord(recs, &ec, 2, []ctf.Value{ctf.StringValue("y")}, 1)
	d := NewDecoder()
	if err := d.Add([]EventClass{c}); err != nil {
		t.Fatal(err)
	}
	var truncs []uint8
	if err := d.Decode(recs, func(r *Record) error { truncs = append(truncs, r.Truncated); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(truncs, []uint8{0, 1}) {
		t.Errorf("truncated %v, want [0 1]", truncs)
	}
}

// Span declarations and the kinds CTF types do not say go through the
// wire class and back.
func TestClassKindsAndSpan(t *testing.T) {
	ec := ctf.EventClass{ID: 2, Name: "job:done", Truncation: true, TruncatedID: 0x8002, Fields: []ctf.Field{
		{Name: "job", Type: ctf.FieldType{Kind: ctf.String}},
		{Name: "tid", Type: ctf.FieldType{Kind: ctf.Bytes, Bits: 128}, Meaning: ctf.TraceID},
		{Name: "sid", Type: ctf.FieldType{Kind: ctf.Bytes, Bits: 64}, Meaning: ctf.SpanID},
		{Name: "ok", Type: ctf.FieldType{Kind: ctf.Uint, Bits: 8}, Meaning: ctf.Boolean},
	}, Span: &ctf.Span{Start: "job:start", Keys: []string{"job"}}}
	wc := ClassFromCTF(ec, nil)
	if kinds := []string{wc.Fields[1].Kind, wc.Fields[2].Kind, wc.Fields[3].Kind}; !reflect.DeepEqual(kinds, []string{"trace_id", "span_id", "bool"}) {
		t.Errorf("kinds %v", kinds)
	}
	b, _ := json.Marshal(wc)
	var back EventClass
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got, err := back.CTF()
	if err != nil || !reflect.DeepEqual(got, ec) {
		t.Errorf("round trip:\n got %+v, %v\nwant %+v", got, err, ec)
	}
}

// A class's module goes through the wire both ways; one that is not
// printable text is left out of the CTF class, which still converts.
func TestClassModule(t *testing.T) {
	ec := ctf.EventClass{ID: 3, Name: "shop:order", Module: "example.com/shop@v1.4.0",
		Fields: []ctf.Field{{Name: "n", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}}}}
	c := ClassFromCTF(ec, nil)
	if c.Module != ec.Module {
		t.Fatalf("ClassFromCTF: module %q, want %q", c.Module, ec.Module)
	}
	back, err := c.CTF()
	if err != nil || back.Module != ec.Module {
		t.Fatalf("CTF: module %q, %v; want %q", back.Module, err, ec.Module)
	}
	c.Module = "example.com/\x1b[31mshop"
	if back, err = c.CTF(); err != nil || back.Module != "" || back.Validate() != nil {
		t.Fatalf("CTF of a module with a control character: module %q, %v; want it left out", back.Module, err)
	}
}
