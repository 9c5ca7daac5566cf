package main

import (
	"sync"

	"github.com/tracemark/tracemark/ctf"
)

// traceBacklog bounds the bytes of packets handed to a trace's writer
// goroutine and not yet written. The capture's goroutine waits only
// beyond it, so that a write that stalls does not stop the draining of
// the traced process's buffers: on ext4 a 256 KiB write at the end of a
// stream file has waited 0.3–0.7 s for the inode's extent lock, held by
// the completion of the file's earlier write-back (which, with the
// discard mount option, waits for the disk to discard a freed block),
// and at 3 M events/s the process's buffers overflowed in one 10 s run
// of two. 128 MiB is about a second of that rate, 0.35 s at 9 M/s.
const traceBacklog = 128 << 20

// traceWakeBytes is how many bytes are queued before an idle writer is
// woken, unless flushed sooner: waking it for every 256 KiB packet cost
// more than writing the packet.
const traceWakeBytes = 1 << 20

// traceFreeBuffers is how many written packets' buffers are kept for
// reuse: enough for the packets in flight without a backlog.
const traceFreeBuffers = 32

// traceQueue writes a trace's packets on a goroutine of its own, in the
// order they were queued: copied by packet, or handed over with their
// buffer by give, which spare then offers again once written. The writer
// takes the packets queued when
// traceWakeBytes of them are, or on flush. Its first error is returned by
// the next packet, flush and close; the packets after it are not written.
type traceQueue struct {
	write func(stream uint32, p ctf.PacketInfo, recs []byte) error

	mu       sync.Mutex
	work     *sync.Cond // signalled for the writer
	room     *sync.Cond // signalled when packets are written
	pending  []*queuedPacket
	queued   int // bytes queued and not yet written
	unwoken  int // bytes pending: queued since the writer last took them
	idle     bool
	closed   bool
	waits    int // times packet waited for room
	err      error
	free     [][]byte // written packets' buffers
	done     chan struct{}
	maxBytes int
}

type queuedPacket struct {
	stream uint32
	info   ctf.PacketInfo
	recs   []byte
	buf    []byte // the buffer recs is in, reused once written
}

// newTraceQueue starts a goroutine writing packets with write, at most
// maxBytes of them queued (or one packet, if bigger).
func newTraceQueue(maxBytes int, write func(stream uint32, p ctf.PacketInfo, recs []byte) error) *traceQueue {
	q := &traceQueue{write: write, maxBytes: maxBytes, done: make(chan struct{})}
	q.work = sync.NewCond(&q.mu)
	q.room = sync.NewCond(&q.mu)
	go q.run()
	return q
}

// packet queues a copy of a packet, waiting while the backlog is full.
func (q *traceQueue) packet(stream uint32, p ctf.PacketInfo, recs []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.waitRoom(len(recs)); err != nil {
		return err
	}
	// The copy under the lock: the writer waits for it at most as long
	// as the capture would have for a write of its own.
	buf := append(q.takeFree(), recs...)
	q.enqueue(&queuedPacket{stream: stream, info: p, recs: buf, buf: buf})
	return nil
}

// give queues a packet without copying it: recs is in buf, which the
// queue keeps until the packet is written. The caller may still read
// them until it next calls spare.
func (q *traceQueue) give(stream uint32, p ctf.PacketInfo, recs, buf []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.waitRoom(len(recs)); err != nil {
		return err
	}
	q.enqueue(&queuedPacket{stream: stream, info: p, recs: recs, buf: buf})
	return nil
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

// waitRoom waits until n more bytes fit in the backlog, and returns the
// first error; mu is held.
func (q *traceQueue) waitRoom(n int) error {
	for q.err == nil && q.queued > 0 && q.queued+n > q.maxBytes {
		q.waits++
		q.wake() // whatever is pending, now
		q.room.Wait()
	}
	return q.err
}

// enqueue adds j to the pending packets, waking the writer for a
// megabyte of them; mu is held.
func (q *traceQueue) enqueue(j *queuedPacket) {
	q.pending = append(q.pending, j)
	q.queued += len(j.recs)
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
		// only for traceWakeBytes, a flush or close.
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
			q.mu.Lock()
			failed := q.err != nil
			q.mu.Unlock()
			var err error
			if !failed {
				err = q.write(j.stream, j.info, j.recs)
			}
			q.mu.Lock()
			q.queued -= len(j.recs)
			if err != nil && q.err == nil {
				q.err = err
			}
			if len(q.free) < traceFreeBuffers {
				q.free = append(q.free, j.buf[:0])
			}
			q.room.Signal()
			q.mu.Unlock()
		}
		clear(batch)
		q.mu.Lock()
	}
	q.mu.Unlock()
}

// close waits for the packets queued to be written and returns the first
// error; packet must not be called after. It may be called again.
func (q *traceQueue) close() error {
	q.mu.Lock()
	q.closed = true
	q.work.Signal()
	q.mu.Unlock()
	<-q.done
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}
