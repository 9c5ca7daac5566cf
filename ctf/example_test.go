package ctf_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tracemark/tracemark/ctf"
)

// Writing a trace that Babeltrace 2 reads, then reading it back.
func Example() {
	dir, _ := os.MkdirTemp("", "ctf-example")
	defer os.RemoveAll(dir)
	trace := filepath.Join(dir, "trace")

	w, err := ctf.Create(trace, ctf.TraceInfo{
		Clock: ctf.Clock{Name: "monotonic", Frequency: 1_000_000_000},
		Env:   map[string]string{"hostname": "example", "procname": "demo"},
	})
	if err != nil {
		panic(err)
	}
	request := ctf.EventClass{ID: 1, Name: "http:request_done", Fields: []ctf.Field{
		{Name: "path", Type: ctf.FieldType{Kind: ctf.String}},
		{Name: "status", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}},
	}}
	if err := w.AddEventClass(request); err != nil {
		panic(err)
	}
	var records []byte
	records, _ = ctf.AppendRecord(records, &request, 1000, []ctf.Value{ctf.StringValue("/a"), ctf.IntValue(200)}, 0)
	records, _ = ctf.AppendRecord(records, &request, 2500, []ctf.Value{ctf.StringValue("/b"), ctf.IntValue(503)}, 0)
	if err := w.WritePacket(0, ctf.PacketInfo{BeginTS: 1000, EndTS: 2500}, records); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}

	r, err := ctf.Open(trace) // babeltrace2 trace prints the same events
	if err != nil {
		panic(err)
	}
	defer r.Close()
	for e, err := range r.Events() {
		if err != nil {
			panic(err)
		}
		fmt.Println(e.Cycles, e.Name(), string(e.Fields[0].Bytes), e.Fields[1].Int)
	}
	// Output:
	// 1000 http:request_done /a 200
	// 2500 http:request_done /b 503
}
