package perfetto_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/perfetto"
)

// Events normally come from a ctf.Reader; here they are built by hand. The
// request's latency field makes it a slice that ends at the event, and
// the option draws the field on a counter track too.
func ExampleWriter() {
	class := ctf.EventClass{ID: 0, Name: "http:request_done", Fields: []ctf.Field{
		{Name: "path", Type: ctf.FieldType{Kind: ctf.String}},
		{Name: "latency", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}},
	}}
	info := ctf.TraceInfo{Env: map[string]string{"procname": "demo", "vpid": "4242"}}
	counter, err := perfetto.ParseFieldRef("http:request_done:latency")
	if err != nil {
		log.Fatal(err)
	}
	var out bytes.Buffer
	w, err := perfetto.NewWriter(&out, info, []ctf.EventClass{class}, perfetto.WithCounters(counter))
	if err != nil {
		log.Fatal(err)
	}
	ev := ctf.Event{Class: &class, Time: 1700000000_000900000, Fields: []ctf.Value{ctf.StringValue("/"), ctf.IntValue(250000)}}
	if err := w.WriteEvent(&ev); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Len() > 0, bytes.Contains(out.Bytes(), []byte("http:request_done latency")))
	// Output: true true
}

func ExampleParseFieldRef() {
	r, err := perfetto.ParseFieldRef("http:request_done:latency")
	fmt.Printf("%q %q %v\n", r.Event, r.Field, err)
	_, err = perfetto.ParseFieldRef("latency")
	fmt.Println(err)
	// Output:
	// "http:request_done" "latency" <nil>
	// bad field reference: "latency": want EVENT:FIELD, as in http:request_done:latency
}
