package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/otlptest"
	"github.com/tracemark/tracemark/internal/wire"
)

// The classes of the parallel export's tests: a span start, its end, and
// a plain event.
var parClasses = []wire.EventClass{
	{ID: 1, Name: "q:start", Fields: []wire.ClassField{{Name: "id", Type: "uint64"}, {Name: "sql", Type: "string"}}},
	{ID: 2, Name: "q:end", Fields: []wire.ClassField{{Name: "id", Type: "uint64"}, {Name: "rows", Type: "int64"}}},
	{ID: 3, Name: "m:x", Fields: []wire.ClassField{{Name: "i", Type: "int64"}, {Name: "s", Type: "string"}}},
}

// parOut is an otlpOut exporting to r, as startOTLP makes one, its
// markers known: q:end ends the spans that q:start starts, paired by id.
func parOut(t *testing.T, r *otlptest.Receiver) *otlpOut {
	t.Helper()
	exp, err := otlp.New(r.URL(), otlp.WithHTTPClient(r.Server.Client()), otlp.WithBlock())
	if err != nil {
		t.Fatal(err)
	}
	o := newOTLPOut(r.URL(), exp, wire.Clock{Frequency: 1e9})
	o.spans["q:end"] = &otlp.SpanRule{Start: "q:start", Keys: []string{"id"}}
	o.starts["q:start"] = []string{"id"}
	for _, c := range parClasses {
		o.scopes[c.Name] = otlp.Scope{Name: "example.com/q"}
	}
	return o
}

// parRecords encodes records of parClasses.
type parRecords struct {
	t   *testing.T
	ecs map[uint16]*ctf.EventClass
	b   []byte
}

func newParRecords(t *testing.T) *parRecords {
	p := &parRecords{t: t, ecs: map[uint16]*ctf.EventClass{}}
	for i := range parClasses {
		ec, err := parClasses[i].CTF()
		if err != nil {
			t.Fatal(err)
		}
		p.ecs[ec.ID] = &ec
	}
	return p
}

func (p *parRecords) add(id uint16, ts uint64, vals ...ctf.Value) {
	var err error
	if p.b, err = ctf.AppendRecord(p.b, p.ecs[id], ts, vals, 0); err != nil {
		p.t.Fatal(err)
	}
}

// take returns the records added since the last take.
func (p *parRecords) take() []byte {
	b := p.b
	p.b = nil
	return b
}

// Spans whose start and end are in different packets (a goroutine that
// moved to another P between them: another stream) pair on the parallel
// path: each packet's span events reach the exporter in the order the
// packets came, whichever worker finishes first. Packets of varied
// sizes make the workers finish out of order; every event and every
// span arrives, with the right times and attributes, and the counts per
// marker are exact.
func TestOTLPParallelSpansAcrossPackets(t *testing.T) {
	r := otlptest.NewReceiver(t)
	o := parOut(t, r)
	w := o.startWorkers(4, nil)
	w.addClasses(parClasses)
	p := newParRecords(t)
	const packets = 200
	plain := 0
	for k := range packets {
		// Packet k ends the spans packet k-1 started, and starts its
		// own; some packets carry many plain events.
		if k > 0 {
			p.add(2, uint64(1000*k+500), ctf.UintValue(uint64(k-1)), ctf.IntValue(int64(k)))
		}
		for i := range (k % 7) * 300 {
			p.add(3, uint64(1000*k+1+i%400), ctf.IntValue(int64(i)), ctf.StringValue("hello"))
			plain++
		}
		if k < packets-1 {
			p.add(1, uint64(1000*k+900), ctf.UintValue(uint64(k)), ctf.StringValue(fmt.Sprint("select ", k)))
		}
		if err := w.packet(p.take(), 42); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	w.takeCounts(counts)
	if want := (map[string]uint64{"q:start": packets - 1, "q:end": packets - 1, "m:x": uint64(plain)}); fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	if err := o.exp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := o.exp.Stats()
	if st.Spans != packets-1 || st.Unpaired != 0 {
		t.Errorf("stats %+v: want %d spans, none unpaired", st, packets-1)
	}
	logs := r.Logs()
	if len(logs) != 2*(packets-1)+plain {
		t.Errorf("%d log records, want %d", len(logs), 2*(packets-1)+plain)
	}
	for _, l := range logs {
		if l.Observed != 42 || l.Scope != "example.com/q" {
			t.Fatalf("log record %+v: want observed 42, scope example.com/q", l)
		}
	}
	spans := r.Spans()
	if len(spans) != packets-1 {
		t.Fatalf("%d spans, want %d", len(spans), packets-1)
	}
	for _, s := range spans {
		id, _ := s.Attrs["id"].(int64)
		if s.Name != "q:end" || s.Time != uint64(1000*id+900) || s.End != uint64(1000*(id+1)+500) ||
			s.Attrs["sql"] != fmt.Sprint("select ", id) || s.Attrs["rows"] != id+1 {
			t.Errorf("span %+v", s)
		}
	}
}

// spanDone gives the span events to the exporter in packet order even
// when the packets finish the other way round: the end's packet first,
// then the start's.
func TestOTLPParallelSpanOrder(t *testing.T) {
	r := otlptest.NewReceiver(t)
	o := parOut(t, r)
	w := &otlpWorkers{o: o, waiting: map[uint64][]spanEvent{}}
	start := o.classOf(&parClasses[0])
	end := o.classOf(&parClasses[1])
	w.spanDone(1, []spanEvent{{c: end, ts: 20, vals: []ctf.Value{ctf.UintValue(7), ctf.IntValue(3)}}})
	w.spanDone(2, nil)
	if st := o.exp.Stats(); st.Spans != 0 || st.Unpaired != 0 {
		t.Fatalf("before packet 0 was done: %+v, want nothing given yet", st)
	}
	w.spanDone(0, []spanEvent{{c: start, ts: 10, vals: []ctf.Value{ctf.UintValue(7), ctf.StringValue("q")}}})
	if w.next != 3 || len(w.waiting) != 0 {
		t.Errorf("next %d, %d packets waiting: want 3, 0", w.next, len(w.waiting))
	}
	if err := o.exp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := o.exp.Stats(); st.Spans != 1 || st.Unpaired != 0 {
		t.Errorf("stats %+v: want the span paired", st)
	}
	if s := r.Spans(); len(s) != 1 || s[0].Time != 10 || s[0].End != 20 {
		t.Errorf("spans %+v", s)
	}
}

// A packet that does not decode fails the recording, as on one
// goroutine: the error comes back from a later packet or from close.
func TestOTLPParallelDecodeError(t *testing.T) {
	r := otlptest.NewReceiver(t)
	o := parOut(t, r)
	defer o.exp.Close(context.Background())
	w := o.startWorkers(2, nil)
	w.addClasses(parClasses)
	bad := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	var err error
	for range 100 {
		if err = w.packet(bad, 1); err != nil {
			break
		}
	}
	if cerr := w.close(); err == nil {
		err = cerr
	}
	if !errors.Is(err, wire.ErrFrame) {
		t.Errorf("error %v, want one wrapping wire.ErrFrame", err)
	}
}

// wallNS is wall's time in ns, for nanosecond clocks and others.
func TestClockWallNS(t *testing.T) {
	for _, c := range []wire.Clock{{Frequency: 1e9, OffsetSeconds: 1_700_000_000, Offset: 123}, {Frequency: 2_500_000_000, OffsetSeconds: 5, Offset: 7}, {}} {
		cc := newClockConv(c)
		for _, ts := range []uint64{0, 1, 999_999_999, 1 << 40} {
			if got, want := cc.wallNS(ts), cc.wall(ts).UnixNano(); got != want {
				t.Errorf("clock %+v, ts %d: wallNS %d, wall %d", c, ts, got, want)
			}
		}
	}
}

// A worker decodes the records of a stream with an event context: the
// context follows each header, before the fields.
func TestOTLPParallelEventContext(t *testing.T) {
	r := otlptest.NewReceiver(t)
	o := parOut(t, r)
	w := o.startWorkers(1, []string{"vtid"})
	w.addClasses(parClasses)
	p := newParRecords(t)
	p.add(3, 100, ctf.IntValue(7), ctf.StringValue("hello"))
	rec := p.take()
	withTID := append(append(append([]byte{}, rec[:ctf.EventHeaderSize]...), 0x92, 0x10, 0, 0), rec[ctf.EventHeaderSize:]...)
	if err := w.packet(withTID, 42); err != nil {
		t.Fatal(err)
	}
	if err := w.close(); err != nil {
		t.Fatalf("a packet with a thread id after each header: %v", err)
	}
	if err := o.exp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs := r.Logs()
	if len(logs) != 1 || logs[0].Attrs["s"] != "hello" || fmt.Sprint(logs[0].Attrs["i"]) != "7" {
		t.Errorf("received %+v, want m:x with i=7, s=hello", logs)
	}
}

// The capture's goroutine hands packets over without waiting while the
// workers are behind, up to the backlog's bytes (the workers share the
// CPUs with the traced program; the capture must keep reading), and
// waits beyond it until a worker is done with a packet. A packet bigger
// than the whole backlog goes through once the backlog is empty. Every
// event still arrives.
func TestOTLPParallelBacklog(t *testing.T) {
	r := otlptest.NewReceiver(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the receiver's own cleanup, which waits for its handlers
	r.Answer(func(string, int) (int, map[string]string, []byte) {
		<-release // the collector holds every request: the worker's Commit waits
		return 0, nil, nil
	})
	o := parOut(t, r)
	exp, err := otlp.New(r.URL(), otlp.WithHTTPClient(r.Server.Client()), otlp.WithBlock(),
		otlp.WithQueueSize(1), otlp.WithBatch(1, 0, time.Hour), otlp.WithSenders(1))
	if err != nil {
		t.Fatal(err)
	}
	o.exp.Close(context.Background())
	o.exp = exp
	w := o.startWorkers(1, nil)
	w.addClasses(parClasses)
	p := newParRecords(t)
	packet := func(n int) []byte {
		for i := range n {
			p.add(3, uint64(100+i), ctf.IntValue(int64(i)), ctf.StringValue("hello"))
		}
		return p.take()
	}
	w.maxBacklog = 4 * len(packet(100))
	waits := func() int {
		w.backlogMu.Lock()
		defer w.backlogMu.Unlock()
		return w.waits
	}
	// hand hands a packet over on a goroutine and reports whether it
	// waited for room; done gets its result once it is handed over.
	hand := func(recs []byte) (waited bool, done chan error) {
		before := waits()
		done = make(chan error, 1)
		go func() { done <- w.packet(recs, 1) }()
		for {
			select {
			case err := <-done:
				done <- err
				return false, done
			default:
			}
			if waits() > before {
				return true, done
			}
			runtime.Gosched()
		}
	}
	// Four packets fill the backlog; the worker is stuck on the first.
	for k := range 4 {
		waited, done := hand(packet(100))
		if waited {
			t.Fatalf("packet %d of 4 waited for the workers with room in the backlog", k+1)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	waited, fifth := hand(packet(100))
	if !waited {
		t.Fatal("the fifth packet was handed over with the backlog full")
	}
	unblock()
	if err := <-fifth; err != nil {
		t.Fatal(err)
	}
	// Bigger than the whole backlog: it waits for the others to be done.
	if err := w.packet(packet(500), 1); err != nil {
		t.Fatal(err)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	if err := o.exp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, want := len(r.Logs()), 5*100+500; n != want {
		t.Errorf("%d log records received, want %d", n, want)
	}
	if w.backlog != 0 {
		t.Errorf("backlog %d bytes after close, want 0", w.backlog)
	}
}
