package main

import (
	"runtime"
	"sync"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/wire"
)

// maxOTLPWorkers bounds the goroutines that decode and encode the
// packets of one recording for --otlp.
const maxOTLPWorkers = 4

// otlpBacklog bounds the bytes of packets handed to the workers and not
// yet done. The capture's goroutine waits only beyond it: the workers
// share the CPUs with the traced program and the collector, and fall
// behind for a few milliseconds whenever those take the CPUs; with a
// queue of two packets, that stopped the capture's goroutine, then the
// agent, and the traced program's buffers overflowed (0.3–1.9 % of
// 9 M events/s lost on two cores). 32 MiB is about 130 ms of that rate.
const otlpBacklog = 32 << 20

// otlpMaxJobs is the capacity of the workers' queue: with the jobs the
// workers hold, it bounds the jobs handed over and not done, whatever
// their size.
const otlpMaxJobs = 4096

// otlpFreeJobs is how many done jobs, and their buffers, are kept for
// reuse: enough for the packets in flight without a backlog; a backlog's
// are left to the garbage collector.
const otlpFreeJobs = 16

// otlpWorkerCount is the number of those goroutines: one per P but one,
// at least one and at most maxOTLPWorkers. The P left over is for the
// goroutine reading the stream and writing the trace, and the exporter's
// senders: workers on every P kept a sender waiting for a P while its
// collector waited for the request, and the exporter's queue overflowed
// (on two cores, with two workers, half as many events reached the
// collector at 3 M/s as with one).
func otlpWorkerCount() int { return max(1, min(runtime.GOMAXPROCS(0)-1, maxOTLPWorkers)) }

// otlpWorkers decodes the records of a recording's packets and encodes
// them for the exporter on several goroutines, for record --otlp: the
// capture's goroutine only reads frames, writes the trace and hands
// each packet, copied, to whichever worker is free. A worker encodes a
// packet's records into its own otlp.LogBuilder and commits them at
// once, so the exporter's lock is taken once per packet.
//
// The records of one packet keep their order; packets may be committed
// in another order than they came, which OTLP allows (the timestamps say
// when each event happened). Spans are paired in the order the packets
// came, as on one goroutine: the events of span classes are copied out
// and given to the exporter's SpanOf packet by packet in arrival order,
// by whichever worker finishes the packet next in line (spanDone).
type otlpWorkers struct {
	o         *otlpOut
	evContext []string // the event context the records carry
	jobs      chan *otlpJob
	free      chan *otlpJob
	wg        sync.WaitGroup
	seq       uint64 // the next packet's number; the capture's goroutine's

	// The bytes of the jobs handed over and not done, at most
	// maxBacklog (or one job's); roomy is signalled when a job is done;
	// waits counts the times packet waited for it.
	backlogMu  sync.Mutex
	backlog    int
	maxBacklog int
	roomy      *sync.Cond
	waits      int

	mu      sync.Mutex
	classes []wire.EventClass // every class announced, in order
	counts  map[string]uint64 // events decoded per marker, not yet taken
	err     error             // the first decoding error

	spanMu  sync.Mutex
	next    uint64                 // the packet whose span events go next
	waiting map[uint64][]spanEvent // span events of later packets, done
}

// otlpJob is one packet for a worker.
type otlpJob struct {
	seq      uint64
	nclasses int   // the classes announced before it
	arrived  int64 // when it arrived, ns since the Unix epoch
	recs     []byte
}

// spanEvent is an event of a span class, kept for SpanOf.
type spanEvent struct {
	c         *otlp.Class
	ts        int64
	vals      []ctf.Value
	truncated uint8
}

// startWorkers starts n workers exporting to o the records of a stream
// whose records carry the event context named by evContext (the Hello's
// Context).
func (o *otlpOut) startWorkers(n int, evContext []string) *otlpWorkers {
	w := &otlpWorkers{
		o: o, evContext: evContext, jobs: make(chan *otlpJob, otlpMaxJobs), free: make(chan *otlpJob, otlpFreeJobs),
		counts: map[string]uint64{}, waiting: map[uint64][]spanEvent{}, maxBacklog: otlpBacklog,
	}
	w.roomy = sync.NewCond(&w.backlogMu)
	for range n {
		w.wg.Add(1)
		go w.work()
	}
	return w
}

// addClasses makes classes known to the packets handed over after.
func (w *otlpWorkers) addClasses(cs []wire.EventClass) {
	w.mu.Lock()
	w.classes = append(w.classes, cs...)
	w.mu.Unlock()
}

// packet hands a packet's records to a worker (they are copied: recs may
// be reused after), waiting if the backlog is full (otlpBacklog). It
// returns the first error a worker met decoding. A packet bigger than
// the whole backlog waits only for an empty one.
func (w *otlpWorkers) packet(recs []byte, arrived int64) error {
	w.mu.Lock()
	err, n := w.err, len(w.classes)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	// Room first, then the copy: no packet is held beyond the bound.
	w.backlogMu.Lock()
	for w.backlog > 0 && w.backlog+len(recs) > w.maxBacklog {
		w.waits++
		w.roomy.Wait()
	}
	w.backlog += len(recs)
	w.backlogMu.Unlock()
	var j *otlpJob
	select {
	case j = <-w.free:
	default:
		j = &otlpJob{}
	}
	j.seq, j.nclasses, j.arrived = w.seq, n, arrived
	j.recs = append(j.recs[:0], recs...)
	w.seq++
	w.jobs <- j
	return nil
}

// done takes a job's bytes off the backlog.
func (w *otlpWorkers) done(j *otlpJob) {
	w.backlogMu.Lock()
	w.backlog -= len(j.recs)
	w.roomy.Signal()
	w.backlogMu.Unlock()
}

// close waits for the workers to finish the packets handed over, and
// returns the first decoding error.
func (w *otlpWorkers) close() error {
	close(w.jobs)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// takeCounts adds the events decoded per marker since the last call to
// m.
func (w *otlpWorkers) takeCounts(m map[string]uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, n := range w.counts {
		m[name] += n
	}
	clear(w.counts)
}

// work is a worker: it transcodes packets with its own transcoder.
func (w *otlpWorkers) work() {
	defer w.wg.Done()
	o := w.o
	tc, ctxErr := newOTLPTranscoder(o, w.evContext) // capture.run refuses such a stream first
	applied := 0
	b := o.exp.NewLogBuilder()
	for j := range w.jobs {
		err := ctxErr
		if err == nil && j.nclasses > applied {
			w.mu.Lock()
			cs := w.classes[applied:j.nclasses]
			w.mu.Unlock()
			err = tc.add(cs)
			applied = j.nclasses
		}
		var runs []markerRun
		var spans []spanEvent
		if err == nil {
			err = tc.packet(j.recs, b, j.arrived)
			runs, spans = tc.runs, tc.spans
		}
		o.exp.Commit(b)
		w.mu.Lock()
		for _, r := range runs {
			w.counts[r.name] += r.n
		}
		if err != nil && w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
		w.spanDone(j.seq, spans)
		w.done(j)
		select {
		case w.free <- j:
		default:
		}
	}
}

// spanDone gives the span events of packet seq to the exporter, and
// those of the packets after it that are done, if it is next in line;
// else it leaves them for the worker whose packet is.
func (w *otlpWorkers) spanDone(seq uint64, spans []spanEvent) {
	w.spanMu.Lock()
	defer w.spanMu.Unlock()
	if seq != w.next {
		w.waiting[seq] = spans
		return
	}
	for {
		for i := range spans {
			s := &spans[i]
			w.o.exp.SpanOf(s.c, s.ts, s.vals, s.truncated)
		}
		w.next++
		var ok bool
		if spans, ok = w.waiting[w.next]; !ok {
			return
		}
		delete(w.waiting, w.next)
	}
}

// cloneValues copies values and the bytes they alias.
func cloneValues(vals []ctf.Value) []ctf.Value {
	out := make([]ctf.Value, len(vals))
	for i, v := range vals {
		if v.Bytes != nil {
			v.Bytes = append([]byte(nil), v.Bytes...)
		}
		out[i] = v
	}
	return out
}

// parallel makes c export its records with o's workers instead of
// decoding them on its own goroutine (nothing else needs each record).
func (o *otlpOut) parallel(c *capture) {
	if o == nil {
		return
	}
	c.par = o.startWorkers(otlpWorkerCount(), c.s.Hello.Context)
	c.packetsOnly = false
}
