package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/otlptest"
	"github.com/tracemark/tracemark/internal/wire"
)

// keepBodies is an http.RoundTripper that keeps the body of each request
// by URL path and answers 200 with nothing.
type keepBodies struct {
	mu     sync.Mutex
	bodies map[string][][]byte
}

func (k *keepBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.bodies == nil {
		k.bodies = map[string][][]byte{}
	}
	k.bodies[req.URL.Path] = append(k.bodies[req.URL.Path], b)
	k.mu.Unlock()
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: req}, nil
}

// encOut is an otlpOut whose exporter keeps its requests in k, in one
// batch per signal (sent at Close), its markers known: every class of
// classes has a scope, and q:end ends the spans that q:start starts,
// paired by id. Its clock counts at freq.
func encOut(t testing.TB, k *keepBodies, classes []wire.EventClass, freq uint64) *otlpOut {
	t.Helper()
	exp, err := otlp.New("http://collector.invalid:4318", otlp.WithHTTPClient(&http.Client{Transport: k}),
		otlp.WithBatch(1<<30, 1<<30, time.Hour), otlp.WithQueueSize(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	o := newOTLPOut("http://collector.invalid:4318", exp, wire.Clock{Frequency: freq, OffsetSeconds: 1_700_000_000, Offset: 12345})
	o.spans["q:end"], o.spans["d:span"] = &otlp.SpanRule{Start: "q:start", Keys: []string{"id"}}, &otlp.SpanRule{Duration: "d"}
	o.starts["q:start"] = []string{"id"}
	for _, c := range classes {
		o.scopes[c.Name] = otlp.Scope{Name: "example.com/" + c.Name[:1], Version: "v1.2.3"}
	}
	return o
}

// decodeAndAdd is the way record --otlp's workers went before the
// transcoder, the reference it must match: decode each record into
// values (wire.Decoder), then LogBuilder.Add them, and SpanOf the events
// of span classes.
func decodeAndAdd(o *otlpOut, evContext []string, classes []wire.EventClass, packets [][]byte) (map[string]uint64, error) {
	dec := wire.NewDecoder()
	if err := dec.SetContext(evContext); err != nil {
		return nil, err
	}
	if err := dec.Add(classes); err != nil {
		return nil, err
	}
	b := o.exp.NewLogBuilder()
	counts := map[string]uint64{}
	var err error
	for i, p := range packets {
		observed := int64(1000 + i)
		err = dec.Decode(p, func(r *wire.Record) error {
			c := o.classOf(r.Class)
			ts := o.cc.wallNS(r.TS)
			b.Add(c, ts, observed, r.Fields, r.Truncated)
			if c.Span != nil || c.StartKeys != nil {
				o.exp.SpanOf(c, ts, cloneValues(r.Fields), r.Truncated)
			}
			counts[r.Class.Name]++
			return nil
		})
		o.exp.Commit(b)
		if err != nil {
			break
		}
	}
	return counts, err
}

// transcode is the workers' way now, on one goroutine.
func transcode(o *otlpOut, evContext []string, classes []wire.EventClass, packets [][]byte) (map[string]uint64, error) {
	tc, err := newOTLPTranscoder(o, evContext)
	if err != nil {
		return nil, err
	}
	if err := tc.add(classes); err != nil {
		return nil, err
	}
	// Two builders, in turn: what the transcoder keeps for a builder
	// must follow the one it is given.
	builders := []*otlp.LogBuilder{o.exp.NewLogBuilder(), o.exp.NewLogBuilder()}
	counts := map[string]uint64{}
	for i, p := range packets {
		b := builders[i%2]
		err = tc.packet(p, b, int64(1000+i))
		o.exp.Commit(b)
		for _, r := range tc.runs {
			counts[r.name] += r.n
		}
		for _, s := range tc.spans {
			o.exp.SpanOf(s.c, s.ts, s.vals, s.truncated)
		}
		if err != nil {
			break
		}
	}
	return counts, err
}

// bothWays runs packets through decodeAndAdd and transcode, and fails
// unless the requests are byte for byte the same, and the counts and
// whether there was an error. It returns transcode's error. It does so
// with a clock of 2.5 GHz and one of ns, whose runs of records the
// exporter encodes in its own loop.
func bothWays(t testing.TB, evContext []string, classes []wire.EventClass, packets [][]byte) error {
	t.Helper()
	errNS := bothWaysAt(t, 1e9, evContext, classes, packets)
	err := bothWaysAt(t, 2_500_000_000, evContext, classes, packets)
	if fmt.Sprint(errNS) != fmt.Sprint(err) {
		t.Fatalf("transcoding with a ns clock: %v; with a 2.5 GHz clock: %v", errNS, err)
	}
	return err
}

func bothWaysAt(t testing.TB, freq uint64, evContext []string, classes []wire.EventClass, packets [][]byte) error {
	t.Helper()
	var kOld, kNew keepBodies
	oOld, oNew := encOut(t, &kOld, classes, freq), encOut(t, &kNew, classes, freq)
	countsOld, errOld := decodeAndAdd(oOld, evContext, classes, packets)
	countsNew, errNew := transcode(oNew, evContext, classes, packets)
	for _, o := range []*otlpOut{oOld, oNew} {
		if err := o.exp.Close(context.Background()); err != nil && !errors.Is(err, otlp.ErrIncomplete) {
			t.Fatal(err)
		}
	}
	if (errOld == nil) != (errNew == nil) {
		t.Fatalf("decoding: %v; transcoding: %v", errOld, errNew)
	}
	if errNew != nil && !errors.Is(errNew, wire.ErrFrame) {
		t.Fatalf("transcoding: %v, want an error wrapping wire.ErrFrame", errNew)
	}
	if !maps.Equal(countsOld, countsNew) {
		t.Fatalf("counts %v, decoding counted %v", countsNew, countsOld)
	}
	for _, path := range slices.Sorted(maps.Keys(kOld.bodies)) {
		a, b := kOld.bodies[path], kNew.bodies[path]
		if len(a) != len(b) {
			t.Fatalf("%s: %d requests, decoding made %d", path, len(b), len(a))
		}
		for i := range a {
			if path == "/v1/traces" {
				sameSpans(t, a[i], b[i])
				continue
			}
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("%s: request %d differs:\n got %x\nwant %x", path, i, b[i], a[i])
			}
		}
	}
	if len(kNew.bodies) != len(kOld.bodies) {
		t.Fatalf("requests to %v, decoding made them to %v", slices.Sorted(maps.Keys(kNew.bodies)), slices.Sorted(maps.Keys(kOld.bodies)))
	}
	return errNew
}

// sameSpans fails unless two trace requests hold the same spans, but for
// their span ids and the trace ids made up for them: random.
func sameSpans(t testing.TB, a, b []byte) {
	t.Helper()
	sa, err := otlptest.Decode(a, true)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := otlptest.Decode(b, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, ss := range [][]otlptest.Record{sa, sb} {
		for i := range ss {
			if len(ss[i].TraceID) != 16 || len(ss[i].SpanID) != 8 {
				t.Fatalf("span %+v: ids of %d and %d bytes", ss[i], len(ss[i].TraceID), len(ss[i].SpanID))
			}
			ss[i].SpanID = nil
			if ss[i].Name == "q:end" {
				ss[i].TraceID = nil // made up
			}
		}
	}
	// Compared as text: a NaN attribute is not DeepEqual to itself.
	if fmt.Sprintf("%+v", sa) != fmt.Sprintf("%+v", sb) {
		t.Fatalf("spans\n%+v\nwant\n%+v", sb, sa)
	}
}

// encClasses are the classes of the transcoder's tests: every CTF type
// and marker kind, truncation with a twin id and with the older layout
// (the bitmask on every record), span starts and ends, and a span by
// duration.
var encClasses = []wire.EventClass{
	{ID: 1, Name: "a:ints", Fields: []wire.ClassField{
		{Name: "i8", Type: "int8", Kind: "int8"}, {Name: "i16", Type: "int16", Kind: "int16"},
		{Name: "i32", Type: "int32", Kind: "int32"}, {Name: "i64", Type: "int64", Kind: "int64"},
		{Name: "u8", Type: "uint8", Kind: "uint8"}, {Name: "u16", Type: "uint16", Kind: "uint16"},
		{Name: "u32", Type: "uint32", Kind: "uint32"}, {Name: "u64", Type: "uint64", Kind: "uint64"}}},
	{ID: 2, Name: "b:misc", Truncation: true, TruncatedID: 0x8002, Fields: []wire.ClassField{
		{Name: "f32", Type: "float32", Kind: "float32"}, {Name: "f64", Type: "float64", Kind: "float64"},
		{Name: "ok", Type: "uint8", Kind: "bool"}, {Name: "took", Type: "int64", Kind: "duration"},
		{Name: "s", Type: "string", Kind: "string"}, {Name: "raw", Type: "bytes", Kind: "bytes"},
		{Name: "trace", Type: "bytes[16]", Kind: "trace_id"}, {Name: "span", Type: "bytes[8]", Kind: "span_id"}}},
	{ID: 3, Name: "c:old", Truncation: true, Fields: []wire.ClassField{
		{Name: "s", Type: "string", Kind: "string"}, {Name: "n", Type: "uint64", Kind: ""}}},
	{ID: 4, Name: "q:start", Fields: []wire.ClassField{{Name: "id", Type: "uint64", Kind: "uint64"}, {Name: "sql", Type: "string", Kind: "string"}}},
	{ID: 5, Name: "q:end", Truncation: true, TruncatedID: 0x8005, Fields: []wire.ClassField{
		{Name: "id", Type: "uint64", Kind: "uint64"}, {Name: "rows", Type: "int64", Kind: "int64"}, {Name: "err", Type: "string", Kind: "string"}}},
	{ID: 6, Name: "d:span", Fields: []wire.ClassField{{Name: "d", Type: "int64", Kind: "duration"}, {Name: "f", Type: "float32", Kind: "float32"}, {Name: "trace", Type: "bytes[16]", Kind: "trace_id"}}},
	{ID: 7, Name: "e:empty"},
}

// encRecords makes random records of encClasses, n of them, with the
// event context evContext after each header: in runs of one class, most
// of them, as a packet has (the transcoder reads the records after the
// first of a run in a loop of its own).
func encRecords(t testing.TB, r *rand.Rand, evContext []string, n int) []byte {
	t.Helper()
	var out []byte
	wc := &encClasses[0]
	for range n {
		if r.IntN(4) == 0 {
			wc = &encClasses[r.IntN(len(encClasses))]
		}
		ec, err := wc.CTF()
		if err != nil {
			t.Fatal(err)
		}
		vals := make([]ctf.Value, len(ec.Fields))
		for i, f := range ec.Fields {
			vals[i] = randValue(r, f.Type)
		}
		trunc := uint8(0)
		if ec.Truncation && r.IntN(3) == 0 {
			trunc = uint8(1 + r.IntN(255))
		}
		rec, err := ctf.AppendRecord(nil, &ec, r.Uint64()>>r.IntN(64), vals, trunc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec[:ctf.EventHeaderSize]...)
		for _, name := range evContext {
			switch name {
			case "procname":
				out = append(out, strings.Repeat("p", r.IntN(20))...)
				out = append(out, 0)
			default:
				out = append(out, byte(r.Uint32()), byte(r.Uint32()), 0, byte(r.IntN(2)*0x80))
			}
		}
		out = append(out, rec[ctf.EventHeaderSize:]...)
	}
	return out
}

// randValue is a random value of type ft, often at the edges of its
// range (unsigned values above MaxInt64 go out as text).
func randValue(r *rand.Rand, ft ctf.FieldType) ctf.Value {
	switch ft.Kind {
	case ctf.Int:
		shift := 64 - uint(ft.Bits)
		return ctf.IntValue(int64(r.Uint64()<<shift) >> shift >> r.IntN(ft.Bits))
	case ctf.Uint:
		v := r.Uint64() >> (64 - uint(ft.Bits)) >> r.IntN(ft.Bits)
		if ft.Bits == 64 && r.IntN(4) == 0 {
			v |= math.MaxInt64 + 1
		}
		return ctf.UintValue(v)
	case ctf.Float:
		v := r.NormFloat64() * math.Pow(10, float64(r.IntN(30)))
		if ft.Bits == 32 {
			v = float64(float32(v))
		}
		return ctf.FloatValue(v)
	case ctf.String:
		return ctf.StringValue(strings.Repeat("s", r.IntN(3)*r.IntN(100)))
	}
	n := ft.Bits / 8
	if n == 0 {
		n = r.IntN(3) * r.IntN(200)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return ctf.BytesValue(b)
}

// The transcoder makes byte for byte the requests (log records and the
// spans paired from them) that decoding each record into values and
// adding them made, for every field type and kind, truncated records,
// span classes, and records with event contexts of fixed size and with a
// string; it counts the events of each marker alike.
func TestOTLPTranscoderSameAsDecoding(t *testing.T) {
	for _, evContext := range [][]string{nil, {"vtid"}, {"pid", "cpu"}, {"procname", "tid"}} {
		t.Run(fmt.Sprint(evContext), func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, uint64(len(evContext))))
			var packets [][]byte
			for range 20 {
				packets = append(packets, encRecords(t, r, evContext, r.IntN(300)))
			}
			if err := bothWays(t, evContext, encClasses, packets); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Records cut anywhere, or with a byte changed, fail as they fail to
// decode (an error wrapping wire.ErrFrame, no panic), and the records
// before them go out as decoding sends them.
func TestOTLPTranscoderMalformed(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, evContext := range [][]string{nil, {"procname"}} {
		recs := encRecords(t, r, evContext, 6)
		for cut := range len(recs) {
			bothWays(t, evContext, encClasses, [][]byte{recs[:cut]})
		}
		for range 150 {
			bad := slices.Clone(recs)
			bad[r.IntN(len(bad))] = byte(r.Uint32())
			bothWays(t, evContext, encClasses, [][]byte{bad})
		}
	}
}

// Hostile packets: the transcoder agrees with decoding on every input
// and never panics.
func FuzzOTLPTranscoder(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 4 {
		f.Add(encRecords(f, r, nil, 5), false)
		f.Add(encRecords(f, r, []string{"procname"}, 3), true)
	}
	f.Add([]byte{2, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 0xff}, false)
	f.Fuzz(func(t *testing.T, recs []byte, withContext bool) {
		var evContext []string
		if withContext {
			evContext = []string{"procname"}
		}
		bothWays(t, evContext, encClasses, [][]byte{recs})
	})
}

// An error in a run of records of one class names the record's offset,
// and the records before it go out.
func TestOTLPTranscoderErrorInRun(t *testing.T) {
	ec, err := encClasses[0].CTF()
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]ctf.Value, len(ec.Fields))
	for i, f := range ec.Fields {
		vals[i] = ctf.IntValue(int64(i))
		if f.Type.Kind == ctf.Uint {
			vals[i] = ctf.UintValue(uint64(i))
		}
	}
	rec, err := ctf.AppendRecord(nil, &ec, 1e9, vals, 0)
	if err != nil {
		t.Fatal(err)
	}
	var packet []byte
	for range 5 {
		packet = append(packet, rec...)
	}
	packet = packet[:len(packet)-3] // the fifth record cut in its last field
	err = bothWays(t, nil, encClasses, [][]byte{packet})
	if want := fmt.Sprintf("record at offset %d:", 4*len(rec)); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("transcoding: %v, want an error naming %q", err, want)
	}
}

// A class's scope is the module its agent's class frame names; for an
// agent that names none, the module its marker list gave; else
// "tracemark".
func TestClassScope(t *testing.T) {
	var k keepBodies
	o := encOut(t, &k, nil, 1e9)
	o.scopes["old:listed"] = otlp.Scope{Name: "example.com/listed", Version: "v0.1.0"}
	for _, name := range []string{"new:named", "new:path", "new:hostile", "old:unknown"} {
		o.asked[name] = true // no marker list to ask
	}
	for _, tc := range []struct {
		ec   wire.EventClass
		want otlp.Scope
	}{
		{wire.EventClass{Name: "new:named", Module: "example.com/shop@v1.4.0"}, otlp.Scope{Name: "example.com/shop", Version: "v1.4.0"}},
		{wire.EventClass{Name: "new:path", Module: "shop_plugin"}, otlp.Scope{Name: "shop_plugin"}},
		{wire.EventClass{Name: "new:hostile", Module: "shop\x1b[2J"}, otlp.Scope{Name: "tracemark"}},
		{wire.EventClass{Name: "old:listed"}, otlp.Scope{Name: "example.com/listed", Version: "v0.1.0"}},
		{wire.EventClass{Name: "old:unknown"}, otlp.Scope{Name: "tracemark"}},
	} {
		if got := o.classOf(&tc.ec).Scope; got != tc.want {
			t.Errorf("class %s (module %q): scope %+v, want %+v", tc.ec.Name, tc.ec.Module, got, tc.want)
		}
	}
}

// markerListAgent serves markers as an agent's marker list on a Unix
// socket, and counts the requests.
func markerListAgent(t *testing.T, markers []wire.Marker) (*client.Client, *atomic.Int32) {
	var listed atomic.Int32
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		listed.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(wire.MarkerList{Markers: markers})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return client.NewClient(sock), &listed
}

// lateMarkers are a span's two ends, defined after a recording started.
var lateMarkers = []wire.Marker{
	{Name: "late:start", Module: "example.com/late@v1"},
	{Name: "late:done", Module: "example.com/late@v1", Span: &wire.MarkerSpan{Start: "late:start", Keys: []string{"id"}}},
}

// A marker defined after the recording started, whose class does not
// say its span (no stream announced it: classOf alone), is looked up in
// its agent's marker list even when its class names its module: the list
// has its span rule, and the pairing keys of the spans it starts.
func TestClassOfLateMarker(t *testing.T) {
	var k keepBodies
	o := encOut(t, &k, nil, 1e9)
	var listed *atomic.Int32
	o.client, listed = markerListAgent(t, lateMarkers)
	fields := []wire.ClassField{{Name: "id", Type: "string", Kind: "string"}}
	start := o.classOf(&wire.EventClass{ID: 1, Name: "late:start", Module: "example.com/late@v1", Fields: fields})
	done := o.classOf(&wire.EventClass{ID: 2, Name: "late:done", Module: "example.com/late@v1", Fields: fields})
	if listed.Load() == 0 {
		t.Fatal("the marker list was not asked")
	}
	if !slices.Equal(start.StartKeys, []string{"id"}) || done.Span == nil || done.Span.Start != "late:start" {
		t.Errorf("start keys %v, span rule %+v; want [id] and the span from late:start", start.StartKeys, done.Span)
	}
	if done.Scope != (otlp.Scope{Name: "example.com/late", Version: "v1"}) {
		t.Errorf("scope %+v", done.Scope)
	}
}

// The classes a stream announces say their spans: a late marker's span
// rule, and the pairing keys of the spans it starts, come from them with
// no look-up in the marker list (which holds every worker up). An older
// agent's class, without a module, is still looked up.
func TestLearnedLateMarker(t *testing.T) {
	var k keepBodies
	o := encOut(t, &k, nil, 1e9)
	var listed *atomic.Int32
	o.client, listed = markerListAgent(t, append(lateMarkers, wire.Marker{Name: "old:late", Module: "example.com/old@v2"}))
	fields := []wire.ClassField{{Name: "id", Type: "string", Kind: "string"}}
	announced := []wire.EventClass{
		{ID: 1, Name: "late:start", Module: "example.com/late@v1", Fields: fields},
		{ID: 2, Name: "late:done", Module: "example.com/late@v1", Fields: fields, Span: lateMarkers[1].Span},
	}
	c := &capture{}
	o.track(c)
	c.onClasses(announced)
	start, done := o.classOf(&announced[0]), o.classOf(&announced[1])
	if n := listed.Load(); n != 0 {
		t.Errorf("the marker list was asked %d times for classes that say their span", n)
	}
	if !slices.Equal(start.StartKeys, []string{"id"}) || done.Span == nil || done.Span.Start != "late:start" {
		t.Errorf("start keys %v, span rule %+v; want [id] and the span from late:start", start.StartKeys, done.Span)
	}
	if done.Scope != (otlp.Scope{Name: "example.com/late", Version: "v1"}) {
		t.Errorf("scope %+v", done.Scope)
	}
	old := []wire.EventClass{{ID: 3, Name: "old:late", Fields: fields}}
	c.onClasses(old)
	if sc := o.classOf(&old[0]).Scope; listed.Load() != 1 || sc != (otlp.Scope{Name: "example.com/old", Version: "v2"}) {
		t.Errorf("an older agent's late class: %d look-ups, scope %+v; want 1 and its listed module", listed.Load(), sc)
	}
}
