package chromejson_test

import (
	"log"
	"os"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/chromejson"
)

// Events normally come from a ctf.Reader; here they are built by hand.
func ExampleWriter() {
	class := ctf.EventClass{ID: 0, Name: "http:request", Fields: []ctf.Field{
		{Name: "path", Type: ctf.FieldType{Kind: ctf.String}},
		{Name: "status", Type: ctf.FieldType{Kind: ctf.Uint, Bits: 16}},
	}}
	info := ctf.TraceInfo{Env: map[string]string{"procname": "demo", "vpid": "4242"}}
	w := chromejson.NewWriter(os.Stdout, info, []ctf.EventClass{class})
	events := []ctf.Event{
		{Class: &class, Time: 1700000000_000001000, Fields: []ctf.Value{ctf.StringValue("/"), ctf.UintValue(200)}},
		{Stream: 1, Time: 1700000000_000001500, EndTime: 1700000000_000002000, Discarded: 7},
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
	// {"traceEvents":[
	// {"name":"process_name","ph":"M","pid":4242,"args":{"name":"demo"}},
	// {"name":"thread_name","ph":"M","pid":4242,"tid":2,"args":{"name":"http"}},
	// {"name":"http:request","cat":"http","ph":"i","s":"t","ts":1.000,"pid":4242,"tid":2,"args":{"path":"/","status":200}},
	// {"name":"thread_name","ph":"M","pid":4242,"tid":1,"args":{"name":"tracemark"}},
	// {"name":"lost 7 events on stream 1","cat":"tracemark","ph":"i","s":"t","ts":1.500,"pid":4242,"tid":1,"args":{"stream":1,"cpu":0,"lost_events":7,"lost_packets":0,"until":"2023-11-14T22:13:20.000002000Z"}}
	// ],
	// "otherData":{"converter":"tracemark","trace_start":"2023-11-14T22:13:20.000000000Z","trace_start_ns":"1700000000000000000","clock":"","env_procname":"demo","env_vpid":"4242","events":1,"lost_events":7}}
}
