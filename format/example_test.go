package format_test

import (
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format"
)

// writeDemoTrace writes a tiny trace into dir: two http:request events
// and, in a second packet, a notice that 5 events were discarded before
// an http:error event.
func writeDemoTrace(dir string) error {
	w, err := ctf.Create(dir, ctf.TraceInfo{
		Clock: ctf.Clock{Name: "monotonic", Frequency: 1e9, OffsetSeconds: 1700000000},
		Env:   map[string]string{"procname": "demo", "vpid": "4242", "hostname": "box"},
	})
	if err != nil {
		return err
	}
	request := ctf.EventClass{ID: 0, Name: "http:request", Truncation: true, Fields: []ctf.Field{
		{Name: "path", Type: ctf.FieldType{Kind: ctf.String}},
		{Name: "status", Type: ctf.FieldType{Kind: ctf.Uint, Bits: 16}},
		{Name: "latency", Type: ctf.FieldType{Kind: ctf.Float, Bits: 64}},
	}}
	failure := ctf.EventClass{ID: 1, Name: "http:error", Fields: []ctf.Field{
		{Name: "body", Type: ctf.FieldType{Kind: ctf.Bytes}},
	}}
	if err := w.AddEventClasses([]ctf.EventClass{request, failure}); err != nil {
		return err
	}
	var recs []byte
	recs, _ = ctf.AppendRecord(recs, &request, 1_000, []ctf.Value{ctf.StringValue("/index.html"), ctf.UintValue(200), ctf.FloatValue(0.0015)}, 0)
	recs, _ = ctf.AppendRecord(recs, &request, 1_250, []ctf.Value{ctf.StringValue("/api/v1/ite"), ctf.UintValue(404), ctf.FloatValue(0.25)}, 0b001)
	if err := w.WritePacket(0, ctf.PacketInfo{BeginTS: 1_000, EndTS: 2_000}, recs); err != nil {
		return err
	}
	recs, _ = ctf.AppendRecord(nil, &failure, 3_000, []ctf.Value{ctf.BytesValue([]byte("\x00oops"))}, 0)
	if err := w.WritePacket(0, ctf.PacketInfo{BeginTS: 2_500, EndTS: 3_000, Seq: 1, Discarded: 5}, recs); err != nil {
		return err
	}
	return w.Close()
}

func ExampleConvert() {
	dir, err := os.MkdirTemp("", "trace")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := writeDemoTrace(dir); err != nil {
		log.Fatal(err)
	}

	if err := format.Convert(dir, "text", os.Stdout); err != nil {
		log.Fatal(err)
	}
	// Output:
	// [2023-11-14T22:13:20.000001000Z] (+?.?????????) s0 cpu0 http:request: path="/index.html" status=200 latency=0.0015
	// [2023-11-14T22:13:20.000001250Z] (+0.000000250) s0 cpu0 http:request: path="/api/v1/ite"[truncated] status=404 latency=0.25
	// [2023-11-14T22:13:20.000002000Z] (+0.000000750) s0 cpu0 [lost 5 events on stream 0 until 2023-11-14T22:13:20.000003000Z]
	// [2023-11-14T22:13:20.000003000Z] (+0.000001000) s0 cpu0 http:error: body=<006f6f7073>
}

func ExampleConvert_jsonl() {
	dir, err := os.MkdirTemp("", "trace")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := writeDemoTrace(dir); err != nil {
		log.Fatal(err)
	}

	if err := format.Convert(dir, format.JSONL, os.Stdout); err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"ts_ns":1700000000000001000,"time":"2023-11-14T22:13:20.000001000Z","rel_ns":0,"stream":0,"cpu":0,"event":"http:request","provider":"http","fields":{"path":"/index.html","status":200,"latency":0.0015}}
	// {"ts_ns":1700000000000001250,"time":"2023-11-14T22:13:20.000001250Z","rel_ns":250,"stream":0,"cpu":0,"event":"http:request","provider":"http","fields":{"path":"/api/v1/ite","status":404,"latency":0.25},"truncated":["path"]}
	// {"ts_ns":1700000000000002000,"time":"2023-11-14T22:13:20.000002000Z","rel_ns":1000,"stream":0,"cpu":0,"lost_events":5,"lost_packets":0,"end_ts_ns":1700000000000003000,"end_time":"2023-11-14T22:13:20.000003000Z"}
	// {"ts_ns":1700000000000003000,"time":"2023-11-14T22:13:20.000003000Z","rel_ns":2000,"stream":0,"cpu":0,"event":"http:error","provider":"http","fields":{"body":"006f6f7073"}}
}

func ExampleSummarize() {
	dir, err := os.MkdirTemp("", "trace")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := writeDemoTrace(dir); err != nil {
		log.Fatal(err)
	}

	s, err := format.Summarize(dir)
	if err != nil {
		log.Fatal(err)
	}
	s.Dir = "demo.trace" // the temporary name would change at every run
	if err := s.WriteText(os.Stdout); err != nil {
		log.Fatal(err)
	}
	js, _ := json.Marshal(s.Streams)
	fmt.Printf("\n%s\n", js)
	// Output:
	// trace     demo.trace
	// program   demo (pid 4242) on box
	// clock     monotonic
	// first     2023-11-14T22:13:20.000001000Z
	// last      2023-11-14T22:13:20.000003000Z
	// duration  2µs
	// events    3
	// lost      5 events, 0 packets
	//
	// MARKER        EVENTS  TRUNCATED
	// http:error         1          0
	// http:request       2          1
	//
	// STREAM  EVENTS  LOST EVENTS  LOST PACKETS
	// 0            3            5             0
	//
	// [{"stream":0,"events":3,"lost_events":5,"lost_packets":0}]
}
