package ctf

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Bools and durations keep their meaning through a trace (as the TSDL
// type names bool_t and duration_ns_t) and Babeltrace reads them as the
// integers they are.
func TestMeaningsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, testInfo())
	if err != nil {
		t.Fatal(err)
	}
	ec := EventClass{ID: 1, Name: "m:e", Fields: []Field{
		{Name: "ok", Type: FieldType{Uint, 8}, Meaning: Boolean},
		{Name: "lat", Type: FieldType{Int, 64}, Meaning: Duration},
		{Name: "n", Type: FieldType{Int, 64}},
		{Name: "small", Type: FieldType{Uint, 8}},
	}}
	if err := w.AddEventClasses([]EventClass{ec}); err != nil {
		t.Fatal(err)
	}
	rec, err := AppendRecord(nil, &ec, 100, []Value{UintValue(1), IntValue(2000), IntValue(-3), UintValue(4)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(0, PacketInfo{BeginTS: 100, EndTS: 100}, rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := r.Classes()
	if len(got) != 1 || !slices.Equal(got[0].Fields, ec.Fields) {
		t.Errorf("read classes %+v, want %+v", got, ec)
	}
	if out, _ := babeltrace(t, dir); !strings.Contains(out, "{ ok = 1, lat = 2000, n = -3, small = 4 }") {
		t.Errorf("babeltrace2 reads:\n%s", out)
	}
}

func TestMeaningNeedsItsType(t *testing.T) {
	for _, f := range []Field{
		{Name: "b", Type: FieldType{Int, 64}, Meaning: Boolean},
		{Name: "d", Type: FieldType{Uint, 64}, Meaning: Duration},
		{Name: "s", Type: FieldType{Kind: String}, Meaning: Duration},
		{Name: "x", Type: FieldType{Int, 64}, Meaning: 9},
	} {
		ec := EventClass{ID: 1, Name: "m:e", Fields: []Field{f}}
		if err := ec.Validate(); !errors.Is(err, ErrInvalidClass) {
			t.Errorf("field %+v: Validate = %v, want ErrInvalidClass", f, err)
		}
	}
}
