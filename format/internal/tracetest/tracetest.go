// Package tracetest writes the CTF traces that the tests, examples and
// benchmarks of the format packages convert: a small trace with known
// values of every field type, several streams, discarded events, a lost
// packet and truncated fields, large traces of 3-field events, and
// traces like the demo service's (WriteDemo).
package tracetest

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/tracemark/tracemark/ctf"
)

// TB is the part of testing.TB the writers use.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Info describes the small trace: a nanosecond clock whose cycle 0 is
// 2023-11-14T22:13:20Z (Unix time 1700000000), so that an event at cycle
// 170 is at 2023-11-14T22:13:20.000000170Z.
func Info() ctf.TraceInfo {
	return ctf.TraceInfo{
		UUID: [16]byte{0x2a, 0x64, 0x22, 0xd0, 0x6c, 0xee, 0x11, 0xe0, 0x8c, 0x08, 0xcb, 0x07, 0xd7, 0xb3, 0xa5, 0x64},
		Clock: ctf.Clock{
			Name: "monotonic", Frequency: 1e9, OffsetSeconds: 1700000000,
			Description: "Monotonic Clock",
			UUID:        [16]byte{1, 2, 3, 4, 5, 6, 0x47, 8, 0x89, 10, 11, 12, 13, 14, 15, 16},
		},
		Env: map[string]string{"hostname": "testhost", "procname": "app", "vpid": "4242", "trace_name": "unit"},
	}
}

// Origin is the Unix time in nanoseconds of cycle 0 of the small trace.
const Origin = 1700000000 * 1e9

var (
	i8  = ctf.FieldType{Kind: ctf.Int, Bits: 8}
	i16 = ctf.FieldType{Kind: ctf.Int, Bits: 16}
	i32 = ctf.FieldType{Kind: ctf.Int, Bits: 32}
	i64 = ctf.FieldType{Kind: ctf.Int, Bits: 64}
	u8  = ctf.FieldType{Kind: ctf.Uint, Bits: 8}
	u16 = ctf.FieldType{Kind: ctf.Uint, Bits: 16}
	u32 = ctf.FieldType{Kind: ctf.Uint, Bits: 32}
	u64 = ctf.FieldType{Kind: ctf.Uint, Bits: 64}
	f32 = ctf.FieldType{Kind: ctf.Float, Bits: 32}
	f64 = ctf.FieldType{Kind: ctf.Float, Bits: 64}
	str = ctf.FieldType{Kind: ctf.String}
	byt = ctf.FieldType{Kind: ctf.Bytes}
)

// Classes are the event classes of the small trace; they cover every
// field type. "floats" and the odd name have no provider prefix.
var Classes = []ctf.EventClass{
	{ID: 0, Name: "ints:signed", Fields: []ctf.Field{{Name: "a", Type: i8}, {Name: "b", Type: i16}, {Name: "c", Type: i32}, {Name: "d", Type: i64}}},
	{ID: 1, Name: "ints:unsigned", Fields: []ctf.Field{{Name: "a", Type: u8}, {Name: "b", Type: u16}, {Name: "c", Type: u32}, {Name: "d", Type: u64}}},
	{ID: 2, Name: "floats", Fields: []ctf.Field{{Name: "x", Type: f32}, {Name: "y", Type: f64}}},
	{ID: 3, TruncatedID: 0x8003, Name: "http:request", Truncation: true, Fields: []ctf.Field{
		{Name: "method", Type: str}, {Name: "path", Type: str}, {Name: "body", Type: byt}, {Name: "status", Type: u16}}},
	{ID: 4, Name: "http:empty"},
	{ID: 9, Name: `odd "name" \ é`, Fields: []ctf.Field{{Name: "string", Type: str}, {Name: "event", Type: byt}}},
	{ID: 10, Name: "never:fired", Fields: []ctf.Field{{Name: "n", Type: i64}}},
}

// Record is one event record of the small trace.
type Record struct {
	Class int // index in Classes
	TS    uint64
	Vals  []ctf.Value
	Trunc uint8
}

// Packet is one packet of the small trace.
type Packet struct {
	Stream  uint32
	Info    ctf.PacketInfo
	Records []Record
}

// Short names for the value constructors, to keep Packets readable.
var (
	iv = ctf.IntValue
	uv = ctf.UintValue
	fv = ctf.FloatValue
	sv = ctf.StringValue
	bv = ctf.BytesValue
)

// Packets are the packets of the small trace, in writing order. Read in
// timestamp order, the trace holds 12 events and 2 notices:
//
//	100 s0 ints:signed      extremes of the minimum
//	110 s1 ints:signed      extremes of the maximum
//	120 s0 ints:unsigned    maximums
//	130 s5 notice           3 events discarded before stream 5's first packet, until 300
//	130 s5 ints:unsigned    0 1 2 3
//	140 s0 floats           float32 0.1, -0.25
//	150 s1 floats           +Inf -Inf
//	160 s1 notice           12 events discarded and 1 packet lost, until 250
//	165 s5 floats           NaN 1e300
//	170 s0 http:request     UTF-8 and quotes
//	175 s5 odd "name" \ é   control characters and invalid UTF-8
//	180 s1 http:request     empty values, path and body truncated
//	190 s1 http:empty
//	200 s5 floats           -0.0 2.0
var Packets = []Packet{
	{0, ctf.PacketInfo{BeginTS: 100, EndTS: 200, Seq: 0, CPU: 0}, []Record{
		{0, 100, []ctf.Value{iv(-128), iv(-32768), iv(math.MinInt32), iv(math.MinInt64)}, 0},
		{1, 120, []ctf.Value{uv(255), uv(65535), uv(math.MaxUint32), uv(math.MaxUint64)}, 0},
		{2, 140, []ctf.Value{fv(float64(float32(0.1))), fv(-0.25)}, 0},
		{3, 170, []ctf.Value{sv("GET"), sv("/héllo/世界?q=\"x\"\\"), bv([]byte{0, 1, 0xff}), uv(200)}, 0},
	}},
	{1, ctf.PacketInfo{BeginTS: 110, EndTS: 160, Seq: 0, CPU: 1}, []Record{
		{0, 110, []ctf.Value{iv(127), iv(32767), iv(math.MaxInt32), iv(math.MaxInt64)}, 0},
		{2, 150, []ctf.Value{fv(math.Inf(1)), fv(math.Inf(-1))}, 0},
	}},
	// Packet 1 of stream 1 is lost, and 12 events were discarded.
	{1, ctf.PacketInfo{BeginTS: 180, EndTS: 250, Seq: 2, Discarded: 12, CPU: 1}, []Record{
		{3, 180, []ctf.Value{sv(""), sv("/ap"), bv(nil), uv(0)}, 0b0110},
		{4, 190, nil, 0},
	}},
	{5, ctf.PacketInfo{BeginTS: 130, EndTS: 300, Seq: 0, Discarded: 3, CPU: 5}, []Record{
		{1, 130, []ctf.Value{uv(0), uv(1), uv(2), uv(3)}, 0},
		{2, 165, []ctf.Value{fv(math.NaN()), fv(1e300)}, 0},
		{5, 175, []ctf.Value{sv("tab\there\nnl\x01\xff\u2028"), bv([]byte("hi"))}, 0},
		{2, 200, []ctf.Value{fv(math.Copysign(0, -1)), fv(2)}, 0},
	}},
}

// Write writes the small trace into directory dir.
func Write(t TB, dir string) {
	t.Helper()
	w, err := ctf.Create(dir, Info())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddEventClasses(Classes); err != nil {
		t.Fatal(err)
	}
	for _, p := range Packets {
		var recs []byte
		for _, r := range p.Records {
			recs, err = ctf.AppendRecord(recs, &Classes[r.Class], r.TS, r.Vals, r.Trunc)
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WritePacket(p.Stream, p.Info, recs); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// BenchClass is the class of the events of large traces: three fields,
// two int64 and a 16-byte string, like the ctf package's benchmark event.
var BenchClass = ctf.EventClass{ID: 0, Name: "bench:event", Fields: []ctf.Field{
	{Name: "a", Type: i64}, {Name: "b", Type: i64}, {Name: "s", Type: str}}}

// BenchPerPacket is the number of events in a packet of a large trace.
const BenchPerPacket = 1024

// WriteLarge writes a trace of n BenchClass events into directory dir,
// spread round-robin over streams streams (event k has timestamp k and
// fields k, -k, "0123456789abcdef"). It returns the total size in bytes of
// the data stream files.
func WriteLarge(t TB, dir string, n, streams int) int64 {
	t.Helper()
	w, err := ctf.Create(dir, Info())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddEventClass(BenchClass); err != nil {
		t.Fatal(err)
	}
	type state struct {
		recs        []byte
		count       int
		begin, last uint64
		seq         uint64
	}
	st := make([]state, streams)
	flush := func(k int) {
		s := &st[k]
		if s.count == 0 {
			return
		}
		info := ctf.PacketInfo{BeginTS: s.begin, EndTS: s.last, Seq: s.seq, CPU: uint32(k)}
		if err := w.WritePacket(uint32(k), info, s.recs); err != nil {
			t.Fatal(err)
		}
		s.recs, s.count = s.recs[:0], 0
		s.seq++
	}
	for e := range n {
		k := e % streams
		s := &st[k]
		ts := uint64(e)
		if s.count == 0 {
			s.begin = ts
		}
		s.recs = ctf.AppendEventHeader(s.recs, BenchClass.ID, ts)
		s.recs = ctf.AppendInt(s.recs, 64, int64(e))
		s.recs = ctf.AppendInt(s.recs, 64, -int64(e))
		s.recs = ctf.AppendString(s.recs, "0123456789abcdef")
		s.last = ts
		s.count++
		if s.count == BenchPerPacket {
			flush(k)
		}
	}
	for k := range st {
		flush(k)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var size int64
	for k := range streams {
		fi, err := os.Stat(filepath.Join(dir, fmt.Sprintf("channel0_%d", k)))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			t.Fatal(err)
		}
		size += fi.Size()
	}
	return size
}

// DemoClasses are the event classes of demo traces: those of the demo
// service (examples/demoservice), with its duration fields ("latency") as
// the 64-bit integers of nanoseconds that the recorder writes.
var DemoClasses = []ctf.EventClass{
	{ID: 0, TruncatedID: 0x8000, Name: "http:request_start", Truncation: true, Fields: []ctf.Field{{Name: "method", Type: str}, {Name: "path", Type: str}}},
	{ID: 1, TruncatedID: 0x8001, Name: "http:request_done", Truncation: true, Fields: []ctf.Field{
		{Name: "method", Type: str}, {Name: "path", Type: str}, {Name: "status", Type: i64}, {Name: "latency", Type: i64}, {Name: "bytes", Type: i64}}},
	{ID: 2, TruncatedID: 0x8002, Name: "cache:hit", Truncation: true, Fields: []ctf.Field{{Name: "key", Type: str}}},
	{ID: 3, TruncatedID: 0x8003, Name: "cache:miss", Truncation: true, Fields: []ctf.Field{{Name: "key", Type: str}}},
	{ID: 4, TruncatedID: 0x8004, Name: "storage:query", Truncation: true, Fields: []ctf.Field{{Name: "op", Type: str}, {Name: "key", Type: str}, {Name: "latency", Type: i64}}},
	{ID: 5, TruncatedID: 0x8005, Name: "storage:error", Truncation: true, Fields: []ctf.Field{{Name: "op", Type: str}, {Name: "key", Type: str}, {Name: "error", Type: str}}},
}

// demoEvent is one event of a demo trace before it is packed.
type demoEvent struct {
	ts     uint64
	stream int
	class  int
	vals   []ctf.Value
}

// WriteDemo writes into dir a trace like one the demo service gives: n
// HTTP requests over 4 streams, overlapping, each a request_start and a
// request_done (latency 20 µs to 2 ms) with a cache hit or a miss and a
// storage query (and now and then a storage error) in between, packed
// 256 events a packet; stream 2's third packet reports 5 discarded
// events. The same n gives the same trace. It returns the number of
// events.
func WriteDemo(t TB, dir string, n int) int {
	t.Helper()
	const streams = 4
	rng := uint64(0x9e3779b97f4a7c15)
	next := func(m uint64) uint64 { // xorshift, deterministic
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return rng % m
	}
	methods := []string{"GET", "GET", "GET", "POST", "PUT"}
	var evs []demoEvent
	var ts uint64 = 1_000_000
	for i := range n {
		ts += 1000 + next(20000)
		s := int(next(streams))
		method := methods[next(uint64(len(methods)))]
		key := fmt.Sprintf("item-%d", next(200))
		path := "/items/" + key[5:]
		lat := 20_000 + next(2_000_000)
		evs = append(evs, demoEvent{ts, s, 0, []ctf.Value{sv(method), sv(path)}})
		at := ts + 1000 + next(lat/4)
		if next(3) > 0 {
			evs = append(evs, demoEvent{at, s, 2, []ctf.Value{sv(key)}})
		} else {
			evs = append(evs, demoEvent{at, s, 3, []ctf.Value{sv(key)}})
			q := 5000 + next(lat/2)
			evs = append(evs, demoEvent{at + q, s, 4, []ctf.Value{sv("get"), sv(key), iv(int64(q))}})
			if i%97 == 0 {
				evs = append(evs, demoEvent{at + q + 10, s, 5, []ctf.Value{sv("get"), sv(key), sv("timeout")}})
			}
		}
		status := int64(200)
		if i%97 == 0 {
			status = 500
		}
		evs = append(evs, demoEvent{ts + lat, s, 1, []ctf.Value{sv(method), sv(path), iv(status), iv(int64(lat)), iv(int64(100 + next(5000)))}})
	}
	slices.SortStableFunc(evs, func(a, b demoEvent) int { return cmp.Compare(a.ts, b.ts) })
	w, err := ctf.Create(dir, Info())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddEventClasses(DemoClasses); err != nil {
		t.Fatal(err)
	}
	type state struct {
		recs        []byte
		count       int
		begin, last uint64
		seq         uint64
		discarded   uint64
	}
	st := make([]state, streams)
	flush := func(k int) {
		s := &st[k]
		if s.count == 0 {
			return
		}
		if k == 2 && s.seq == 2 {
			s.discarded += 5
		}
		info := ctf.PacketInfo{BeginTS: s.begin, EndTS: s.last, Seq: s.seq, CPU: uint32(k), Discarded: s.discarded}
		if err := w.WritePacket(uint32(k), info, s.recs); err != nil {
			t.Fatal(err)
		}
		s.recs, s.count = s.recs[:0], 0
		s.seq++
	}
	for _, e := range evs {
		s := &st[e.stream]
		if s.count == 0 {
			s.begin = e.ts
		}
		s.recs, err = ctf.AppendRecord(s.recs, &DemoClasses[e.class], e.ts, e.vals, 0)
		if err != nil {
			t.Fatal(err)
		}
		s.last = e.ts
		s.count++
		if s.count == 256 {
			flush(e.stream)
		}
	}
	for k := range st {
		flush(k)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return len(evs)
}
