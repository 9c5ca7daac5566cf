package text_test

import (
	"log"
	"os"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/text"
)

// Events normally come from a ctf.Reader; here they are built by hand.
// With Relative, timestamps count seconds from the first event.
func ExampleWriter() {
	class := ctf.EventClass{ID: 0, Name: "db:query", Truncation: true, Fields: []ctf.Field{
		{Name: "sql", Type: ctf.FieldType{Kind: ctf.String}},
		{Name: "rows", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}},
		{Name: "ms", Type: ctf.FieldType{Kind: ctf.Float, Bits: 32}},
	}}
	w := text.NewWriter(os.Stdout, text.WithRelative())
	events := []ctf.Event{
		{Class: &class, Time: 1700000000_000001000, Fields: []ctf.Value{
			ctf.StringValue("SELECT 1"), ctf.IntValue(1), ctf.FloatValue(float64(float32(0.3)))}},
		{Class: &class, Stream: 1, CPU: 1, Time: 1700000001_250000000, Truncated: 1, Fields: []ctf.Value{
			ctf.StringValue("SELECT * FROM \"t\" WHERE"), ctf.IntValue(-1), ctf.FloatValue(1250)}},
	}
	for i := range events {
		if err := w.WriteEvent(&events[i]); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// [     0.000000000] (+?.?????????) s0 cpu0 db:query: sql="SELECT 1" rows=1 ms=0.3
	// [     1.249999000] (+1.249999000) s1 cpu1 db:query: sql="SELECT * FROM \"t\" WHERE"[truncated] rows=-1 ms=1250.0
}
