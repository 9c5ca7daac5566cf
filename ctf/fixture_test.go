package ctf

import (
	"bytes"
	"errors"
	"io"
	"iter"
	"math"
	"os/exec"
	"strings"
	"testing"
)

var (
	i8  = FieldType{Int, 8}
	i16 = FieldType{Int, 16}
	i32 = FieldType{Int, 32}
	i64 = FieldType{Int, 64}
	u8  = FieldType{Uint, 8}
	u16 = FieldType{Uint, 16}
	u32 = FieldType{Uint, 32}
	u64 = FieldType{Uint, 64}
	f32 = FieldType{Float, 32}
	f64 = FieldType{Float, 64}
	str = FieldType{Kind: String}
	byt = FieldType{Kind: Bytes}
)

// Fixed UUIDs make Babeltrace's output (which shows the trace UUID in
// warnings) deterministic.
var (
	testTraceUUID = [16]byte{0x2a, 0x64, 0x22, 0xd0, 0x6c, 0xee, 0x11, 0xe0, 0x8c, 0x08, 0xcb, 0x07, 0xd7, 0xb3, 0xa5, 0x64}
	testClockUUID = [16]byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x47, 0x08, 0x89, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10}
)

// testInfo is a nanosecond clock whose cycle 0 is 2023-11-14 22:13:20 UTC.
func testInfo() TraceInfo {
	return TraceInfo{
		UUID: testTraceUUID,
		Clock: Clock{
			Name: "monotonic", Frequency: 1e9, OffsetSeconds: 1700000000,
			Description: "Monotonic Clock", UUID: testClockUUID,
		},
		Env: map[string]string{"hostname": "testhost", "procname": "app", "vpid": "4242"},
	}
}

// testClasses cover every field type.
var testClasses = []EventClass{
	{ID: 0, Name: "ints:signed", Fields: []Field{{Name: "a", Type: i8}, {Name: "b", Type: i16}, {Name: "c", Type: i32}, {Name: "d", Type: i64}}},
	{ID: 1, Name: "ints:unsigned", Fields: []Field{{Name: "a", Type: u8}, {Name: "b", Type: u16}, {Name: "c", Type: u32}, {Name: "d", Type: u64}}},
	{ID: 2, Name: "floats", Fields: []Field{{Name: "x", Type: f32}, {Name: "y", Type: f64}}},
	{ID: 3, Name: "http:request", Truncation: true, TruncatedID: 0x8003, Fields: []Field{
		{Name: "method", Type: str}, {Name: "path", Type: str}, {Name: "body", Type: byt}, {Name: "status", Type: u16}, {Name: "latency", Type: i64}, {Name: "ok", Type: u8}}},
	{ID: 7, Name: "empty"},
	{ID: 65535, Name: `odd "name" \ é`, Fields: []Field{{Name: "string", Type: str}, {Name: "event", Type: byt}}},
}

// rec is one event record to write.
type rec struct {
	stream uint32
	class  int // index in testClasses
	ts     uint64
	vals   []Value
	trunc  uint8
}

// testRecords is the interop trace content; timestamps are distinct across
// streams so that the merge order is unambiguous.
var testRecords = []rec{
	{0, 0, 100, []Value{IntValue(-128), IntValue(-32768), IntValue(math.MinInt32), IntValue(math.MinInt64)}, 0},
	{1, 0, 110, []Value{IntValue(127), IntValue(32767), IntValue(math.MaxInt32), IntValue(math.MaxInt64)}, 0},
	{0, 1, 120, []Value{UintValue(255), UintValue(65535), UintValue(math.MaxUint32), UintValue(math.MaxUint64)}, 0},
	{5, 1, 130, []Value{UintValue(0), UintValue(1), UintValue(2), UintValue(3)}, 0},
	{0, 2, 140, []Value{FloatValue(1.5), FloatValue(-0.25)}, 0},
	{1, 2, 150, []Value{FloatValue(math.Inf(1)), FloatValue(math.Inf(-1))}, 0},
	{5, 2, 160, []Value{FloatValue(math.NaN()), FloatValue(1e300)}, 0},
	{0, 3, 170, []Value{StringValue("GET"), StringValue("/héllo/世界?q=\"x\"\\"), BytesValue([]byte{0, 1, 255}), UintValue(200), IntValue(1500000), UintValue(1)}, 0},
	{1, 3, 180, []Value{StringValue(""), StringValue(""), BytesValue(nil), UintValue(0), IntValue(-1), UintValue(0)}, 0x06},
	{5, 4, 190, []Value{}, 0},
	{0, 5, 200, []Value{StringValue("tab\there"), BytesValue([]byte("hi"))}, 0},
	// Second packets (see testPackets).
	{0, 4, 300, []Value{}, 0},
	{1, 0, 310, []Value{IntValue(-1), IntValue(0), IntValue(1), IntValue(2)}, 0},
}

// testPackets groups testRecords into packets: stream, record indexes,
// packet info.
var testPackets = []struct {
	stream uint32
	recs   []int
	info   PacketInfo
}{
	{0, []int{0, 2, 4, 7, 10}, PacketInfo{BeginTS: 90, EndTS: 205, Seq: 0, CPU: 0}},
	{1, []int{1, 5, 8}, PacketInfo{BeginTS: 105, EndTS: 185, Seq: 0, CPU: 1}},
	{5, []int{3, 6, 9}, PacketInfo{BeginTS: 125, EndTS: 195, Seq: 0, CPU: 5}},
	{0, []int{11}, PacketInfo{BeginTS: 290, EndTS: 305, Seq: 1, CPU: 0}},
	// Stream 1 lost 4 events between its packets.
	{1, []int{12}, PacketInfo{BeginTS: 295, EndTS: 320, Seq: 1, Discarded: 4, CPU: 1}},
	// Stream 5 lost packets 1 and 2.
	{5, nil, PacketInfo{BeginTS: 400, EndTS: 410, Seq: 3, Discarded: 0, CPU: 5}},
}

func encodeRecords(t testing.TB, idx []int) []byte {
	t.Helper()
	var b []byte
	for _, i := range idx {
		r := testRecords[i]
		var err error
		b, err = AppendRecord(b, &testClasses[r.class], r.ts, r.vals, r.trunc)
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// writeTestTrace writes the interop trace to dir. If close is false the
// Writer is left open (as after a crash: tail packets remain).
func writeTestTrace(t testing.TB, dir string, close bool) *Writer {
	t.Helper()
	w, err := Create(dir, testInfo())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddEventClasses(testClasses); err != nil {
		t.Fatal(err)
	}
	for _, p := range testPackets {
		if err := w.WritePacket(p.stream, p.info, encodeRecords(t, p.recs)); err != nil {
			t.Fatal(err)
		}
	}
	if close {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// readAll reads every item of the trace in dir, copying field values.
func readAll(t testing.TB, dir string) []Event {
	t.Helper()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []Event
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		c := *ev
		c.Fields = nil
		for _, v := range ev.Fields {
			v.Bytes = bytes.Clone(v.Bytes)
			c.Fields = append(c.Fields, v)
		}
		out = append(out, c)
	}
}

// readAllIter opens the trace in dir and iterates over its events; the
// reader is closed when the test ends.
func readAllIter(t testing.TB, dir string) iter.Seq2[*Event, error] {
	t.Helper()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.Events()
}

// babeltrace runs babeltrace2 with args and returns stdout and stderr.
// It skips the test if babeltrace2 is not installed.
func babeltrace(t testing.TB, args ...string) (stdout, stderr string) {
	t.Helper()
	path, err := exec.LookPath("babeltrace2")
	if err != nil {
		t.Skip("babeltrace2 is not on PATH: skipping the Babeltrace interoperability check")
	}
	cmd := exec.Command(path, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("babeltrace2 %s: %v\nstderr:\n%s", strings.Join(args, " "), err, e.String())
	}
	return o.String(), e.String()
}
