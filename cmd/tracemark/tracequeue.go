package main

import (
	"fmt"
	"sync"

	"github.com/tracemark/tracemark/ctf"
)

// traceBacklog bounds the bytes of packets handed to the traces' writer
// goroutines and not yet written, for all the traces of one command
// (host-wide and the daemon write one per process). A capture waits only
// beyond it, so that a write that stalls does not stop the draining of
// the traced process's buffers: on ext4 a 256 KiB write at the end of a
// stream file has waited 0.3–0.7 s for the inode's extent lock, held by
// the completion of the file's earlier write-back (which, with the
// discard mount option, waits for the disk to discard a freed block),
// and at 3 M events/s the process's buffers overflowed in about half of
// the 10 s runs. 128 MiB is about a second of that rate, 0.35 s at 9 M/s.
const traceBacklog = 128 << 20

// traceWakeBytes is how many bytes are queued before an idle writer is
// woken, unless flushed sooner: waking it for every 256 KiB packet cost
// more than writing the packet.
const traceWakeBytes = 1 << 20

// traceFreeBuffers is how many written packets' buffers a trace keeps for
// reuse: enough for the packets in flight without a backlog.
const traceFreeBuffers = 32

// traceBytes is the budget of the command's traces.
var traceBytes = newTraceBudget(traceBacklog)

// traceBudget bounds the bytes queued by several traceQueues. A queue
// holding none may always queue one packet, so that every trace goes on
// however big its packets. Lock order: a budget's mu, then a queue's.
type traceBudget struct {
	mu   sync.Mutex
	room *sync.Cond // signalled when bytes are given back
	used int
	max  int
}

func newTraceBudget(max int) *traceBudget {
	b := &traceBudget{max: max}
	b.room = sync.NewCond(&b.mu)
	return b
}

// take takes n bytes for q, waiting while they do not fit and q holds
// some; before each wait it has q's pending packets written (a waiting
// capture flushes no more). It returns whether it waited.
func (b *traceBudget) take(q *traceQueue, n int) (waited bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for q.held > 0 && b.used+n > b.max {
		waited = true
		q.mu.Lock()
		q.wake()
		q.mu.Unlock()
		b.room.Wait()
	}
	b.used += n
	q.held += n
	return waited
}

// give gives back n bytes q took.
func (b *traceBudget) give(q *traceQueue, n int) {
	b.mu.Lock()
	b.used -= n
	q.held -= n
	b.room.Broadcast()
	b.mu.Unlock()
}

// traceQueue writes a trace's packets on a goroutine of its own, in the
// order they were queued, each handed over with its buffer by give,
// which spare then offers again once written. An idle
// writer takes the packets queued when traceWakeBytes of them are, on
// flush, or when its capture waits for the budget. Its first error is
// returned by the next packet, flush and close; the packets after it are
// not written. A queue belongs to one capture goroutine.
type traceQueue struct {
	write  func(stream uint32, p ctf.PacketInfo, recs []byte) error
	budget *traceBudget
	held   int // bytes taken from the budget; under budget.mu

	mu      sync.Mutex
	work    *sync.Cond // signalled for the writer
	pending []*queuedPacket
	unwoken int // bytes pending: queued since the writer last took them
	idle    bool
	closed  bool
	waits   int // times the capture waited for the budget
	err     error
	free    [][]byte // written packets' buffers
	done    chan struct{}
}

type queuedPacket struct {
	stream uint32
	info   ctf.PacketInfo
	recs   []byte
	buf    []byte // the buffer recs is in, reused once written
}

// errTraceClosed is the error of a packet given after close.
var errTraceClosed = fmt.Errorf("%w (no packet is taken after close)", ctf.ErrClosed)

// newTraceQueue starts a goroutine writing packets with write, the bytes
// queued bounded by budget.
func newTraceQueue(budget *traceBudget, write func(stream uint32, p ctf.PacketInfo, recs []byte) error) *traceQueue {
	q := &traceQueue{write: write, budget: budget, done: make(chan struct{})}
	q.work = sync.NewCond(&q.mu)
	go q.run()
	return q
}

// give queues a packet without copying it, waiting while the budget is
// spent: recs is in buf, which the queue keeps until it is written. The caller may still read
// them until it next calls spare.
func (q *traceQueue) give(stream uint32, p ctf.PacketInfo, recs, buf []byte) error {
	if err := q.reserve(len(recs)); err != nil {
		return err
	}
	defer q.mu.Unlock()
	q.enqueue(&queuedPacket{stream: stream, info: p, recs: recs, buf: buf})
	return nil
}

// reserve takes n bytes of the budget for a packet and returns with mu
// held, unless the queue failed or is closed: then it returns the error,
// mu not held and nothing taken. Closed is checked under the lock the
// packet is queued under, so none is queued after stop.
func (q *traceQueue) reserve(n int) error {
	q.mu.Lock()
	err := q.status()
	q.mu.Unlock()
	if err != nil {
		return err
	}
	waited := q.budget.take(q, n)
	q.mu.Lock()
	if waited {
		q.waits++
	}
	if err := q.status(); err != nil {
		q.mu.Unlock()
		q.budget.give(q, n)
		return err
	}
	return nil
}

// status returns the first write error, or errTraceClosed after close;
// mu is held.
func (q *traceQueue) status() error {
	if q.err != nil {
		return q.err
	}
	if q.closed {
		return errTraceClosed
	}
	return nil
}

// backlog returns the bytes queued and not yet written.
func (q *traceQueue) backlog() int {
	q.budget.mu.Lock()
	defer q.budget.mu.Unlock()
	return q.held
}

// spare returns the buffer of a packet written, emptied, or nil.
func (q *traceQueue) spare() []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.takeFree()
}

// takeFree returns a written packet's buffer, or nil; mu is held.
func (q *traceQueue) takeFree() []byte {
	n := len(q.free)
	if n == 0 {
		return nil
	}
	b := q.free[n-1]
	q.free[n-1] = nil
	q.free = q.free[:n-1]
	return b
}

// enqueue adds j to the pending packets, waking the writer for a
// megabyte of them; mu is held.
func (q *traceQueue) enqueue(j *queuedPacket) {
	q.pending = append(q.pending, j)
	q.unwoken += len(j.recs)
	if q.unwoken >= traceWakeBytes {
		q.wake()
	}
}

// flush has the packets queued written without waiting for more, and
// returns the first error so far.
func (q *traceQueue) flush() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wake()
	return q.err
}

// wake wakes the writer if it waits and packets are pending; mu is held.
func (q *traceQueue) wake() {
	if q.idle && len(q.pending) > 0 {
		q.work.Signal()
	}
}

func (q *traceQueue) run() {
	defer close(q.done)
	var batch []*queuedPacket
	q.mu.Lock()
	for {
		// Awake, it takes whatever is pending; waiting, it is woken
		// only for traceWakeBytes, a flush, its capture waiting for
		// the budget, or close.
		for len(q.pending) == 0 && !q.closed {
			q.idle = true
			q.work.Wait()
			q.idle = false
		}
		if len(q.pending) == 0 {
			break // closed, everything written
		}
		batch, q.pending = q.pending, batch[:0]
		q.unwoken = 0
		q.mu.Unlock()
		for _, j := range batch {
			q.writeOne(j)
		}
		clear(batch)
		q.mu.Lock()
	}
	q.mu.Unlock()
}

// writeOne writes a packet, unless an earlier one failed, and gives its
// bytes back; mu is not held (the budget's is taken).
func (q *traceQueue) writeOne(j *queuedPacket) {
	q.mu.Lock()
	failed := q.err != nil
	q.mu.Unlock()
	var err error
	if !failed {
		err = q.write(j.stream, j.info, j.recs)
	}
	q.mu.Lock()
	if err != nil && q.err == nil {
		q.err = err
	}
	if len(q.free) < traceFreeBuffers {
		q.free = append(q.free, j.buf[:0])
	}
	q.mu.Unlock()
	q.budget.give(q, len(j.recs))
}

// stop makes the queue take no more packets and its writer end once
// the packets queued are written; wait waits for that. It may be called
// again.
func (q *traceQueue) stop() {
	q.mu.Lock()
	q.closed = true
	q.work.Signal()
	q.mu.Unlock()
}

// wait waits for the writer to end, after stop, and returns the first
// error.
func (q *traceQueue) wait() error {
	<-q.done
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// close stops the queue, waits for the packets queued to be written and
// returns the first error. It may be called again.
func (q *traceQueue) close() error {
	q.stop()
	return q.wait()
}
