package text_test

import (
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/text"
)

// Bools print as true and false and durations in Go's form, as the
// marker's format (%t, %v) says; other integers stay numbers.
func TestBoolsAndDurations(t *testing.T) {
	ec := &ctf.EventClass{ID: 1, Name: "m:e", Fields: []ctf.Field{
		{Name: "ok", Type: ctf.FieldType{Kind: ctf.Uint, Bits: 8}, Meaning: ctf.Boolean},
		{Name: "lat", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}, Meaning: ctf.Duration},
		{Name: "n", Type: ctf.FieldType{Kind: ctf.Uint, Bits: 8}},
	}}
	var b strings.Builder
	w := text.NewWriter(&b, text.WithRelative())
	for _, vals := range [][]ctf.Value{
		{ctf.UintValue(1), ctf.IntValue(65487), ctf.UintValue(1)},
		{ctf.UintValue(0), ctf.IntValue(-1500000000), ctf.UintValue(0)},
	} {
		if err := w.WriteEvent(&ctf.Event{Class: ec, Fields: vals}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m:e: ok=true lat=65.487µs n=1\n", "m:e: ok=false lat=-1.5s n=0\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, b.String())
		}
	}
}
