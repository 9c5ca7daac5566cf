package tracetest

import "github.com/tracemark/tracemark/ctf"

// SpanClasses are the classes of the span trace: a start/done pair keyed
// by job, whose done event also has a latency field (the pair decides,
// not the name); a duration span declared on a field named "took"; and
// a class without a declaration whose "latency" makes it a slice by
// name.
var SpanClasses = []ctf.EventClass{
	{ID: 1, Name: "job:start", Fields: []ctf.Field{{Name: "job", Type: str}, {Name: "items", Type: i64}}},
	{ID: 2, Name: "job:done", Fields: []ctf.Field{{Name: "job", Type: str}, {Name: "latency", Type: i64, Meaning: ctf.Duration}},
		Span: &ctf.Span{Start: "job:start", Keys: []string{"job"}}},
	{ID: 3, Name: "db:query", Fields: []ctf.Field{{Name: "op", Type: str}, {Name: "took", Type: i64, Meaning: ctf.Duration}},
		Span: &ctf.Span{Duration: "took"}},
	{ID: 4, Name: "db:ping", Fields: []ctf.Field{{Name: "latency", Type: i64, Meaning: ctf.Duration}}},
}

// SpanRecord is one event of the span trace.
type SpanRecord struct {
	Class int // index in SpanClasses
	TS    uint64
	Vals  []ctf.Value
}

// SpanRecords are the events of the span trace, in one stream: jobs a
// and b overlap, job c ends without a start, a second job a starts and
// never ends, and the two queries overlap without nesting.
var SpanRecords = []SpanRecord{
	{0, 1000, []ctf.Value{ctf.StringValue("a"), ctf.IntValue(3)}},
	{0, 1500, []ctf.Value{ctf.StringValue("b"), ctf.IntValue(4)}},
	{2, 2000, []ctf.Value{ctf.StringValue("get"), ctf.IntValue(300)}},
	{2, 2100, []ctf.Value{ctf.StringValue("put"), ctf.IntValue(500)}},
	{1, 3000, []ctf.Value{ctf.StringValue("a"), ctf.IntValue(99)}},
	{1, 3500, []ctf.Value{ctf.StringValue("c"), ctf.IntValue(7)}},
	{1, 4000, []ctf.Value{ctf.StringValue("b"), ctf.IntValue(1)}},
	{0, 4100, []ctf.Value{ctf.StringValue("a"), ctf.IntValue(5)}},
	{3, 5000, []ctf.Value{ctf.IntValue(100)}},
}

// SpanSlice is what a converter draws for an event of the span trace:
// a slice of Dur nanoseconds starting at TS (cycles of the trace), or an
// instant at TS when Dur is 0. Lane is the lane of the slice among the
// overlapping slices of its provider (0 for instants).
type SpanSlice struct {
	Name    string
	TS, Dur int64
	Lane    int
}

// SpanSlices are the slices and instants of SpanRecords, in the order
// of the records.
var SpanSlices = []SpanSlice{
	{"job:start", 1000, 0, 0},
	{"job:start", 1500, 0, 0},
	{"db:query", 1700, 300, 0},
	{"db:query", 1600, 500, 1},
	{"job:done", 1000, 2000, 0},
	{"job:done", 3500, 0, 0}, // no start: an instant
	{"job:done", 1500, 2500, 1},
	{"job:start", 4100, 0, 0},
	{"db:ping", 4900, 100, 0},
}

// WriteSpans writes the span trace into directory dir.
func WriteSpans(t TB, dir string) {
	t.Helper()
	w, err := ctf.Create(dir, Info())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddEventClasses(SpanClasses); err != nil {
		t.Fatal(err)
	}
	var recs []byte
	for _, r := range SpanRecords {
		if recs, err = ctf.AppendRecord(recs, &SpanClasses[r.Class], r.TS, r.Vals, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WritePacket(0, ctf.PacketInfo{BeginTS: 1000, EndTS: 5000}, recs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
