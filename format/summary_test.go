package format_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format"
	"github.com/tracemark/tracemark/format/internal/tracetest"
)

func TestSummarize(t *testing.T) {
	dir := t.TempDir()
	tracetest.Write(t, dir)
	got, err := format.Summarize(dir)
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Unix(1700000000, 0).UTC()
	want := format.Summary{
		Dir: dir, Program: "app", PID: 4242, Host: "testhost", Name: "unit",
		Env:    map[string]string{"hostname": "testhost", "procname": "app", "vpid": "4242", "trace_name": "unit", "tracer_name": "tracemark"},
		Clock:  "monotonic",
		Events: 12, First: origin.Add(100), Last: origin.Add(200), Duration: 100,
		LostEvents: 15, LostPackets: 1,
		Markers: []format.MarkerSummary{
			{Name: "floats", Events: 4},
			{Name: "http:empty", Events: 1},
			{Name: "http:request", Events: 2, Truncated: 1},
			{Name: "ints:signed", Events: 2},
			{Name: "ints:unsigned", Events: 2},
			{Name: "never:fired"},
			{Name: `odd "name" \ é`, Events: 1},
		},
		Streams: []format.StreamSummary{
			{Stream: 0, Events: 4},
			{Stream: 1, Events: 4, LostEvents: 12, LostPackets: 1},
			{Stream: 5, Events: 4, LostEvents: 3},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	var text strings.Builder
	if err := got.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	wantText := `trace     ` + dir + `
program   app (pid 4242) on testhost
name      unit
clock     monotonic
first     2023-11-14T22:13:20.000000100Z
last      2023-11-14T22:13:20.000000200Z
duration  100ns
events    12
lost      15 events, 1 packet

MARKER          EVENTS  TRUNCATED
floats               4          0
http:empty           1          0
http:request         2          1
ints:signed          2          0
ints:unsigned        2          0
never:fired          0          0
odd "name" \ é       1          0

STREAM  EVENTS  LOST EVENTS  LOST PACKETS
0            4            0             0
1            4           12             1
5            4            3             0
`
	if text.String() != wantText {
		t.Errorf("WriteText:\n%s\nwant\n%s", text.String(), wantText)
	}

	js, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	dirJSON, _ := json.Marshal(dir)
	wantJSON := `{"dir":` + string(dirJSON) + `,"program":"app","pid":4242,"host":"testhost","name":"unit",` +
		`"env":{"hostname":"testhost","procname":"app","trace_name":"unit","tracer_name":"tracemark","vpid":"4242"},"clock":"monotonic",` +
		`"events":12,"first":"2023-11-14T22:13:20.0000001Z","last":"2023-11-14T22:13:20.0000002Z","duration_ns":100,"lost_events":15,"lost_packets":1,` +
		`"markers":[{"name":"floats","events":4,"truncated":0},{"name":"http:empty","events":1,"truncated":0},{"name":"http:request","events":2,"truncated":1},` +
		`{"name":"ints:signed","events":2,"truncated":0},{"name":"ints:unsigned","events":2,"truncated":0},{"name":"never:fired","events":0,"truncated":0},` +
		`{"name":"odd \"name\" \\ é","events":1,"truncated":0}],` +
		`"streams":[{"stream":0,"events":4,"lost_events":0,"lost_packets":0},{"stream":1,"events":4,"lost_events":12,"lost_packets":1},{"stream":5,"events":4,"lost_events":3,"lost_packets":0}]}`
	if string(js) != wantJSON {
		t.Errorf("JSON:\n%s\nwant\n%s", js, wantJSON)
	}
	var back format.Summary
	if err := json.Unmarshal(js, &back); err != nil || !reflect.DeepEqual(back, got) {
		t.Errorf("JSON does not read back: %v\n%+v", err, back)
	}
}

func TestSummarizeEmpty(t *testing.T) {
	dir := t.TempDir()
	tracetest.WriteLarge(t, dir, 0, 1)
	got, err := format.Summarize(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Events != 0 || !got.First.IsZero() || len(got.Streams) != 0 || len(got.Markers) != 1 {
		t.Errorf("empty trace: %+v", got)
	}
	js, _ := json.Marshal(got)
	if strings.Contains(string(js), `"first"`) {
		t.Errorf("JSON of an empty trace has a first time: %s", js)
	}
	var text strings.Builder
	got.WriteText(&text)
	if !strings.Contains(text.String(), "events    0\nlost      none\n") || strings.Contains(text.String(), "first") {
		t.Errorf("WriteText of an empty trace:\n%s", text.String())
	}
}

// TestSummarizeSaturates checks that lost-event totals saturate instead
// of wrapping around when streams claim huge counts.
func TestSummarizeSaturates(t *testing.T) {
	dir := t.TempDir()
	w, err := ctf.Create(dir, tracetest.Info())
	if err != nil {
		t.Fatal(err)
	}
	for stream, discarded := range []uint64{math.MaxUint64, 5} {
		if err := w.WritePacket(uint32(stream), ctf.PacketInfo{BeginTS: 1, EndTS: 2, Discarded: discarded}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := format.Summarize(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.LostEvents != math.MaxUint64 || s.Streams[0].LostEvents != math.MaxUint64 || s.Streams[1].LostEvents != 5 {
		t.Errorf("lost events %d, streams %+v", s.LostEvents, s.Streams)
	}
	var out strings.Builder
	if err := format.Convert(dir, format.ChromeJSON, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), `"lost_events":"18446744073709551615"}}`+"\n") {
		t.Errorf("perfetto total: %s", out.String()[max(0, out.Len()-80):])
	}
}
