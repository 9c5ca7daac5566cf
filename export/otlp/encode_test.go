package otlp

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/otlptest"
)

// The size that LogAt appends a record with is the size of the record:
// for every kind of value, lengths across varint boundaries, and trace
// and span ids; -1 (the slower path) only where it cannot tell cheaply.
func TestLogRecordLen(t *testing.T) {
	c := &prepared{Class: &Class{Name: "m:x", Fields: []Field{
		{"i", "int64"}, {"u", "uint64"}, {"b", "bool"}, {"f", "float64"}, {"s", "string"}, {"raw", "bytes"},
		{"trace", "trace_id"}, {"span", "span_id"},
	}}}
	c.prepare()
	long := strings.Repeat("x", 200) // a length of two varint bytes
	for _, vals := range [][]ctf.Value{
		{ctf.IntValue(0), ctf.UintValue(0), ctf.UintValue(1), ctf.FloatValue(0.5), ctf.StringValue(""), ctf.BytesValue(nil)},
		{ctf.IntValue(-1), ctf.UintValue(math.MaxInt64), ctf.UintValue(0), ctf.FloatValue(-1e300), ctf.StringValue(long), ctf.BytesValue([]byte(long))},
		{ctf.IntValue(math.MinInt64), ctf.UintValue(127), ctf.UintValue(1), ctf.FloatValue(0), ctf.StringValue("GET"), ctf.BytesValue([]byte{0}),
			ctf.BytesValue(make([]byte, 16)), ctf.BytesValue(make([]byte, 8))},
		{ctf.IntValue(128), ctf.UintValue(1 << 40), ctf.UintValue(0), ctf.FloatValue(1), ctf.StringValue(strings.Repeat("y", 20000)), ctf.BytesValue(nil),
			ctf.BytesValue(make([]byte, 16))},
		{ctf.IntValue(1)}, // fewer values than fields
	} {
		want, _ := appendLogRecord(nil, nil, c, 1, 2, vals, 0)
		if got := logRecordLen(c, vals, 0); got != len(want) {
			t.Errorf("%v: logRecordLen %d, the record has %d bytes", vals, got, len(want))
		}
	}
	big := []ctf.Value{ctf.IntValue(0), ctf.UintValue(math.MaxInt64 + 1)}
	if n := logRecordLen(c, big, 0); n != -1 {
		t.Errorf("an unsigned value sent as text: %d, want -1", n)
	}
	if n := logRecordLen(c, []ctf.Value{ctf.IntValue(0)}, 1); n != -1 {
		t.Errorf("truncated: %d, want -1", n)
	}
}

// Several senders, several goroutines logging, a collector that holds the
// first requests until the queue has overflowed: every event is counted
// once (exported or dropped), and the collector received exactly the
// exported ones.
func TestSendersAccountForEveryEvent(t *testing.T) {
	var recv otlptest.Counter
	release := make(chan struct{})
	var held atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if held.Add(1) <= 3 {
			<-release // the first three requests wait: the queue fills
		}
		recv.ServeHTTP(w, r)
	}))
	defer srv.Close()
	const queue, batch = 2000, 100
	e, err := New(srv.URL, WithHTTPClient(srv.Client()), WithSenders(3), WithQueueSize(queue), WithBatch(batch, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	c := Class{Name: "m:x", Fields: []Field{{"i", "int64"}}}
	// Fill the queue while the three senders are held: what does not
	// fit is dropped.
	for i := range 3 * queue {
		e.Log(&c, int64(i), []ctf.Value{ctf.IntValue(int64(i))}, 0)
	}
	if st := e.Stats(); st.Dropped < queue || st.Dropped+st.Queued != st.Events {
		t.Errorf("with the collector holding the first requests: %+v", st)
	}
	close(release)
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := range 5000 {
				e.Log(&c, int64(g*5000+i), []ctf.Value{ctf.IntValue(int64(i))}, 0)
			}
		})
	}
	wg.Wait()
	if err := e.Close(context.Background()); err != nil && !errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
	st := e.Stats()
	if st.Events != 3*queue+15000 || st.Exported+st.Dropped != st.Events || st.Rejected+st.Failed+st.Queued != 0 {
		t.Errorf("stats %+v: want every one of %d events exported or dropped", st, 3*queue+15000)
	}
	if got := recv.Logs.Load(); got != st.Exported {
		t.Errorf("the collector received %d, the exporter exported %d", got, st.Exported)
	}
}
