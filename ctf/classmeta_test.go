package ctf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeOne writes a trace with classes ecs and the records recs (already
// encoded) in one packet, and returns its directory.
func writeOne(t *testing.T, ecs []EventClass, recs []byte, end uint64) string {
	t.Helper()
	dir := t.TempDir()
	w, err := Create(dir, testInfo())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddEventClasses(ecs); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(0, PacketInfo{EndTS: end}, recs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func appendRec(t *testing.T, b []byte, ec *EventClass, ts uint64, trunc uint8, vals ...Value) []byte {
	t.Helper()
	b, err := AppendRecord(b, ec, ts, vals, trunc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A class with a truncated twin is two event classes in the metadata,
// which Babeltrace shows with the trailer only on the truncated event,
// and one class for the Reader: both records point at it.
func TestTruncatedTwin(t *testing.T) {
	ec := EventClass{ID: 2, TruncatedID: 0x8002, Name: "db:query", Truncation: true, Fields: []Field{
		{Name: "sql", Type: FieldType{Kind: String}}, {Name: "rows", Type: FieldType{Int, 64}}}}
	other := EventClass{ID: 3, Name: "db:other"}
	var recs []byte
	recs = appendRec(t, recs, &ec, 10, 0, StringValue("select"), IntValue(1))
	recs = appendRec(t, recs, &ec, 20, 1, StringValue("sel"), IntValue(2))
	recs = appendRec(t, recs, &other, 30, 0)
	if got := len(recs); got != 10+7+8+10+4+8+1+10 {
		t.Fatalf("records are %d bytes: the untruncated one must have no trailer", got)
	}
	dir := writeOne(t, []EventClass{ec, other}, recs, 30)

	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Classes(); len(got) != 2 || !reflect.DeepEqual(got[0], ec) {
		t.Fatalf("Classes = %+v, want one class for both ids: %+v and db:other", got, ec)
	}
	var classes []*EventClass
	var truncs []uint8
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		classes = append(classes, ev.Class)
		truncs = append(truncs, ev.Truncated)
	}
	if len(classes) != 3 || classes[0] != classes[1] || classes[0].Name != "db:query" || !reflect.DeepEqual(truncs, []uint8{0, 1, 0}) {
		t.Fatalf("events: classes %v, truncated %v; want the same class twice, truncated 0 then 1", classes, truncs)
	}

	if !haveBabeltrace {
		t.Skip("babeltrace2 not installed")
	}
	stdout, stderr := babeltrace(t, "--no-delta", "--clock-cycles", dir)
	if stderr != "" {
		t.Errorf("babeltrace stderr:\n%s", stderr)
	}
	compareLines(t, "babeltrace", lines(stdout), []string{
		`[00000000000000000010] testhost:app:(4242) db:query: { cpu_id = 0 }, { sql = "select", rows = 1 }`,
		`[00000000000000000020] testhost:app:(4242) db:query: { cpu_id = 0 }, { sql = "sel", rows = 2, _truncated = 1 }`,
		`[00000000000000000030] testhost:app:(4242) db:other: { cpu_id = 0 }, { }`,
	})
	if c := babeltraceCount(t, dir); c.events != 3 {
		t.Errorf("babeltrace counted %d events, want 3", c.events)
	}
}

// A class whose TruncatedID is its ID has the trailer on every record:
// the layout of traces written before the twins, which must stay
// readable.
func TestTruncationOnEveryRecord(t *testing.T) {
	ec := EventClass{ID: 4, TruncatedID: 4, Name: "old", Truncation: true, Fields: []Field{{Name: "s", Type: FieldType{Kind: String}}}}
	var recs []byte
	recs = appendRec(t, recs, &ec, 10, 0, StringValue("a"))
	recs = appendRec(t, recs, &ec, 20, 1, StringValue("b"))
	dir := writeOne(t, []EventClass{ec}, recs, 20)
	meta, _ := os.ReadFile(filepath.Join(dir, "metadata"))
	if n := strings.Count(string(meta), "event {"); n != 1 {
		t.Errorf("metadata has %d event blocks, want 1", n)
	}
	evs := readAll(t, dir)
	if len(evs) != 2 || evs[0].Truncated != 0 || evs[1].Truncated != 1 || !reflect.DeepEqual(*evs[0].Class, ec) {
		t.Fatalf("events %+v", evs)
	}
}

// Trace ids, span ids, span declarations and the markers' modules
// survive the metadata, which Babeltrace reads without a warning.
func TestSpanAndIDsRoundTrip(t *testing.T) {
	start := EventClass{ID: 1, Name: "job:start */ odd", Fields: []Field{{Name: "job", Type: FieldType{Kind: String}}}}
	done := EventClass{ID: 2, TruncatedID: 0x8002, Name: "job:done", Truncation: true, Fields: []Field{
		{Name: "job", Type: FieldType{Kind: String}},
		{Name: "trace", Type: FieldType{Bytes, 128}, Meaning: TraceID},
		{Name: "span", Type: FieldType{Bytes, 64}, Meaning: SpanID},
		{Name: "raw", Type: FieldType{Bytes, 64}},
	}, Span: &Span{Start: start.Name, Keys: []string{"job"}}, Module: "example.com/jobs@v1.2.0"}
	query := EventClass{ID: 3, Name: "db:query", Fields: []Field{{Name: "latency", Type: FieldType{Int, 64}, Meaning: Duration}},
		Span: &Span{Duration: "latency"}, Module: "example.com/db */ odd"}
	tid := make([]byte, 16)
	sid := make([]byte, 8)
	for i := range tid {
		tid[i] = byte(i + 1)
	}
	var recs []byte
	recs = appendRec(t, recs, &start, 10, 0, StringValue("j"))
	recs = appendRec(t, recs, &done, 20, 0, StringValue("j"), BytesValue(tid), BytesValue(sid), BytesValue(sid))
	recs = appendRec(t, recs, &query, 30, 0, IntValue(5))
	dir := writeOne(t, []EventClass{start, done, query}, recs, 30)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, want := r.Classes(), []EventClass{start, done, query}; !reflect.DeepEqual(got, want) {
		t.Errorf("Classes:\n got %+v\nwant %+v", got, want)
	}
	if !haveBabeltrace {
		t.Skip("babeltrace2 not installed")
	}
	stdout, stderr := babeltrace(t, "--no-delta", "--clock-cycles", dir)
	if stderr != "" {
		t.Errorf("babeltrace stderr:\n%s", stderr)
	}
	if got := lines(stdout); len(got) != 3 || !strings.Contains(got[1], "trace = [ [0] = 1, [1] = 2,") || !strings.Contains(got[2], "latency = 5 }") {
		t.Errorf("babeltrace output:\n%s", stdout)
	}
}

func TestSpanValidation(t *testing.T) {
	lat := Field{Name: "latency", Type: FieldType{Int, 64}}
	s := Field{Name: "s", Type: FieldType{Kind: String}}
	for _, tc := range []struct {
		span *Span
		ok   bool
	}{
		{&Span{Duration: "latency"}, true},
		{&Span{Start: "a:b", Keys: []string{"s"}}, true},
		{&Span{Start: "a:b"}, true},
		{&Span{}, false},
		{&Span{Duration: "s"}, false},
		{&Span{Duration: "nope"}, false},
		{&Span{Duration: "latency", Start: "a:b"}, false},
		{&Span{Start: "a:b", Keys: []string{"nope"}}, false},
		{&Span{Start: "a\nb"}, false},
	} {
		ec := EventClass{Name: "x", Fields: []Field{lat, s}, Span: tc.span}
		if err := ec.Validate(); (err == nil) != tc.ok {
			t.Errorf("span %+v: Validate = %v, want ok %v", tc.span, err, tc.ok)
		}
	}
}

// A note that cannot be used is ignored with a warning, and the trace
// still reads, as Babeltrace reads it: a twin that does not match its
// class, or names none, becomes a class of its own; a note that is not
// JSON, or declares a span that does not fit, is dropped.
func TestUnusableNotesAreIgnoredWithAWarning(t *testing.T) {
	lat := Field{Name: "lat", Type: FieldType{Kind: Int, Bits: 64}, Meaning: Duration}
	ec := EventClass{ID: 2, TruncatedID: 9, Name: "a", Truncation: true, Fields: []Field{{Name: "s", Type: FieldType{Kind: String}}}}
	spanned := EventClass{ID: 3, Name: "c", Fields: []Field{lat}, Span: &Span{Duration: "lat"}, Module: "example.com/c"}
	dir := writeOne(t, []EventClass{ec, spanned}, nil, 0)
	path := filepath.Join(dir, "metadata")
	meta, _ := os.ReadFile(path)
	for _, tc := range []struct {
		from, to, warning string
		classes           int    // classes the reader sees
		span              bool   // c keeps its span
		module            string // c's module
	}{
		{`"truncated_of":2`, `"truncated_of":5`, "twin of id 5, which is not declared", 3, true, "example.com/c"},
		{"name = \"a\";\n\tid = 9;", "name = \"b\";\n\tid = 9;", "is not a truncated twin", 3, true, "example.com/c"},
		{`"truncated_of":2`, `"truncated_of":2,,`, "tracemark note", 3, true, "example.com/c"},
		{`"duration":"lat"`, `"duration":"nope"`, "does not fit the class", 2, false, "example.com/c"},
		{`"module":"example.com/c"`, `"module":"example.com/\u0007"`, "module dropped", 2, true, ""},
	} {
		if !strings.Contains(string(meta), tc.from) {
			t.Fatalf("metadata lacks %q:\n%s", tc.from, meta)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(meta), tc.from, tc.to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(dir)
		if err != nil {
			t.Errorf("metadata with %s: %v, want it read with a warning", tc.to, err)
			continue
		}
		w := r.Warnings()
		if len(w) != 1 || !strings.Contains(w[0], tc.warning) || !strings.HasPrefix(w[0], "line ") {
			t.Errorf("metadata with %s: warnings %q, want one naming its line and %q", tc.to, w, tc.warning)
		}
		if got := len(r.Classes()); got != tc.classes {
			t.Errorf("metadata with %s: %d classes, want %d", tc.to, got, tc.classes)
		}
		for _, c := range r.Classes() {
			if c.Name == "c" && (c.Span != nil) != tc.span {
				t.Errorf("metadata with %s: span of c = %+v, want kept %v", tc.to, c.Span, tc.span)
			}
			if c.Name == "c" && c.Module != tc.module {
				t.Errorf("metadata with %s: module of c = %q, want %q", tc.to, c.Module, tc.module)
			}
		}
		r.Close()
	}
	if err := os.WriteFile(path, meta, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if w := r.Warnings(); len(w) != 0 {
		t.Errorf("the metadata as written: warnings %q", w)
	}
}

// A twin id is an id like any other: it cannot be another class's.
func TestTwinIDConflicts(t *testing.T) {
	w, err := Create(t.TempDir(), testInfo())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := []Field{{Name: "s", Type: FieldType{Kind: String}}}
	if err := w.AddEventClass(EventClass{ID: 5, Name: "five"}); err != nil {
		t.Fatal(err)
	}
	a := EventClass{ID: 1, TruncatedID: 5, Name: "a", Truncation: true, Fields: s}
	if err := w.AddEventClass(a); !errors.Is(err, ErrInvalidClass) {
		t.Errorf("twin id of an existing class: %v, want ErrInvalidClass", err)
	}
	a.TruncatedID = 6
	if err := w.AddEventClasses([]EventClass{a, a}); err != nil {
		t.Errorf("the same class twice: %v", err)
	}
	if err := w.AddEventClass(EventClass{ID: 6, Name: "six"}); !errors.Is(err, ErrInvalidClass) {
		t.Errorf("a class on a twin id: %v, want ErrInvalidClass", err)
	}
	if got := w.Classes(); len(got) != 2 || got[0].ID != 1 || got[1].ID != 5 {
		t.Errorf("Classes = %+v, want classes 1 and 5 (the twin is not a class)", got)
	}
}
