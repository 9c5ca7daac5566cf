package otlp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/otlptest"
)

// Records committed from a LogBuilder reach the collector as the same
// records Log sends, for two scopes, with batches that fill up in the
// middle of a commit (by count and by bytes) and a value sent as text.
func TestLogBuilderSameAsLog(t *testing.T) {
	other := Class{Name: "db:query", Fields: []Field{{"q", "string"}}, Scope: Scope{Name: "example.com/db"}}
	send := func(t *testing.T, built bool, opts ...Option) []otlptest.Record {
		r := otlptest.NewReceiver(t)
		e := newTestExporter(t, r, opts...)
		c, o := testClass, other
		b := e.NewLogBuilder()
		for i := range 50 {
			vals := testValues(i)
			q := []ctf.Value{ctf.StringValue(fmt.Sprint("select ", i))}
			if built {
				b.Add(&c, int64(i), 7, vals, uint8(i%3/2))
				b.Add(&o, int64(i), 7, q, 0)
				if i%20 == 19 {
					if n := b.Len(); n != 40 {
						t.Fatalf("Len %d after 20 pairs, want 40", n)
					}
					if d := e.Commit(b); d != 0 {
						t.Fatalf("Commit dropped %d", d)
					}
					if b.Len() != 0 {
						t.Fatalf("Len %d after Commit", b.Len())
					}
				}
			} else {
				e.LogAt(&c, int64(i), 7, vals, uint8(i%3/2))
				e.LogAt(&o, int64(i), 7, q, 0)
			}
		}
		e.Commit(b)
		if err := e.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := e.Stats(); st.Events != 100 || st.Exported != 100 {
			t.Fatalf("stats %+v, want 100 events exported", st)
		}
		recs := r.Logs()
		slices.SortStableFunc(recs, func(x, y otlptest.Record) int {
			if x.Time != y.Time {
				return int(x.Time) - int(y.Time)
			}
			if x.Name < y.Name {
				return -1
			}
			if x.Name > y.Name {
				return 1
			}
			return 0
		})
		return recs
	}
	for _, opts := range [][]Option{
		nil,
		{WithBatch(7, 0, time.Hour)},       // full by count within a commit
		{WithBatch(0, 300, time.Hour)},     // full by bytes within a commit
		{WithCompression(CompressionGzip)}, // the same bytes, compressed
		{WithBatch(1, 0, time.Hour), WithSenders(3)}, // a batch per record
	} {
		want := send(t, false, opts...)
		got := send(t, true, opts...)
		if len(got) != 100 || !reflect.DeepEqual(got, want) {
			t.Errorf("built records differ from logged ones:\n got %+v\nwant %+v", got, want)
		}
	}
}

// Several goroutines each commit their own LogBuilder while the collector
// holds the first requests, so that the queue overflows in the middle of
// commits: every event is counted once, exported or dropped, Commit's
// drops add up to the exporter's, and the collector received exactly the
// exported ones.
func TestLogBuilderAccountsForEveryEvent(t *testing.T) {
	var recv otlptest.Counter
	release := make(chan struct{})
	var held atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if held.Add(1) <= 2 {
			<-release
		}
		recv.ServeHTTP(w, r)
	}))
	defer srv.Close()
	const queue, batch = 1000, 64
	e, err := New(srv.URL, WithHTTPClient(srv.Client()), WithSenders(2), WithQueueSize(queue), WithBatch(batch, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	c := Class{Name: "m:x", Fields: []Field{{"i", "int64"}}}
	d := Class{Name: "m:y", Fields: []Field{{"s", "string"}}, Scope: Scope{Name: "y"}}
	var drops atomic.Uint64
	fill := func(b *LogBuilder, g, packets, per int) {
		for p := range packets {
			for i := range per {
				b.Add(&c, int64(g*1e6+p*per+i), 0, []ctf.Value{ctf.IntValue(int64(i))}, 0)
				if i%5 == 0 {
					b.Add(&d, 0, 0, []ctf.Value{ctf.StringValue("x")}, 0)
				}
			}
			drops.Add(uint64(e.Commit(b)))
		}
	}
	// Held: the first two batches are out, the rest fills the queue.
	fill(e.NewLogBuilder(), 99, 10, 300)
	if st := e.Stats(); st.Dropped == 0 || st.Dropped+st.Queued != st.Events || st.Dropped != drops.Load() {
		t.Errorf("with the collector holding the first requests: %+v, Commit said %d dropped", st, drops.Load())
	}
	close(release)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() { fill(e.NewLogBuilder(), g, 20, 250) })
	}
	wg.Wait()
	if err := e.Close(context.Background()); err != nil && !errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
	st := e.Stats()
	const total = 10*(300+60) + 4*20*(250+50)
	if st.Events != total || st.Exported+st.Dropped != st.Events || st.Rejected+st.Failed+st.Queued != 0 {
		t.Errorf("stats %+v: want every one of %d events exported or dropped", st, total)
	}
	if st.Dropped != drops.Load() {
		t.Errorf("the exporter dropped %d, Commit said %d", st.Dropped, drops.Load())
	}
	if got := recv.Logs.Load(); got != st.Exported {
		t.Errorf("the collector received %d, the exporter exported %d", got, st.Exported)
	}
}

// With WithBlock, Commit waits for room rather than dropping: a commit
// bigger than the whole queue goes through.
func TestLogBuilderBlocks(t *testing.T) {
	var recv otlptest.Counter
	srv := httptest.NewServer(&recv)
	defer srv.Close()
	e, err := New(srv.URL, WithHTTPClient(srv.Client()), WithQueueSize(100), WithBatch(10, 0, 0), WithBlock())
	if err != nil {
		t.Fatal(err)
	}
	c := Class{Name: "m:x", Fields: []Field{{"i", "int64"}}}
	b := e.NewLogBuilder()
	for i := range 1000 {
		b.Add(&c, int64(i), 0, []ctf.Value{ctf.IntValue(int64(i))}, 0)
	}
	if d := e.Commit(b); d != 0 {
		t.Errorf("Commit dropped %d with WithBlock", d)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Exported != 1000 || recv.Logs.Load() != 1000 {
		t.Errorf("stats %+v, received %d: want 1000", st, recv.Logs.Load())
	}
}

// SpanOf pairs what it is given in order, whichever goroutine encoded
// the log records: starts and ends committed from two builders, the span
// side given in event order, make every span.
func TestSpanOfPairsAcrossBuilders(t *testing.T) {
	r := otlptest.NewReceiver(t)
	e := newTestExporter(t, r)
	start := Class{Name: "q:start", Fields: []Field{{"id", "uint64"}, {"sql", "string"}}, StartKeys: []string{"id"}}
	end := Class{Name: "q:end", Fields: []Field{{"id", "uint64"}, {"rows", "int64"}},
		Span: &SpanRule{Start: "q:start", Keys: []string{"id"}}}
	b1, b2 := e.NewLogBuilder(), e.NewLogBuilder()
	const n = 20
	for i := range n {
		sv := []ctf.Value{ctf.UintValue(uint64(i)), ctf.StringValue("select")}
		ev := []ctf.Value{ctf.UintValue(uint64(i)), ctf.IntValue(int64(i))}
		b1.Add(&start, int64(100*i), 0, sv, 0)
		b2.Add(&end, int64(100*i+50), 0, ev, 0)
		e.SpanOf(&start, int64(100*i), sv, 0)
		e.SpanOf(&end, int64(100*i+50), ev, 0)
	}
	e.Commit(b2)
	e.Commit(b1)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	if st.Spans != n || st.Unpaired != 0 || st.Exported != 3*n {
		t.Fatalf("stats %+v: want %d spans, none unpaired", st, n)
	}
	spans := r.Spans()
	if len(spans) != n {
		t.Fatalf("%d spans received, want %d", len(spans), n)
	}
	for _, s := range spans {
		id := s.Attrs["id"].(int64)
		if s.Name != "q:end" || s.Time != uint64(100*id) || s.End != uint64(100*id+50) || s.Attrs["sql"] != "select" || s.Attrs["rows"] != id {
			t.Errorf("span %+v", s)
		}
	}
	if got := len(r.Logs()); got != 2*n {
		t.Errorf("%d log records, want %d", got, 2*n)
	}
}

// A commit that goes into an empty batch is taken whole, up to twice the
// batch's size, and the batch is sent at once: the records of a packet,
// more than a batch holds, go out without being copied into two batches.
// A batch that already holds records is filled up to its size, as
// before.
func TestCommitIntoAnEmptyBatchWhole(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n, err := otlptest.CountRecords(body)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
	}))
	defer srv.Close()
	e, err := New(srv.URL, WithHTTPClient(srv.Client()), WithSenders(1), WithBatch(10, 0, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := Class{Name: "m:x", Fields: []Field{{"i", "int64"}}}
	b := e.NewLogBuilder()
	next := 0
	commit := func(n int) {
		for range n {
			b.Add(&c, int64(next), 0, []ctf.Value{ctf.IntValue(int64(next))}, 0)
			next++
		}
		if d := e.Commit(b); d != 0 {
			t.Fatalf("%d dropped", d)
		}
	}
	// 15 into an empty batch: one of 15. 25, more than twice 10: 10,
	// then the 15 left whole. 3 then 9: the batch of 3 filled up to 10,
	// the 2 left sent at Close.
	for _, n := range []int{15, 25, 3, 9} {
		commit(n)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{15, 10, 15, 10, 2}; !slices.Equal(sizes, want) {
		t.Errorf("requests of %v records, want %v", sizes, want)
	}
}
