package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
)

// packet queues a copy of recs, which the caller may reuse after: give
// with a buffer of its own, as the capture gives the frame's.
func (q *traceQueue) packet(stream uint32, p ctf.PacketInfo, recs []byte) error {
	buf := bytes.Clone(recs)
	return q.give(stream, p, buf, buf)
}

// written is what a traceQueue's write function was given.
type written struct {
	mu    sync.Mutex
	seqs  []uint64
	recs  [][]byte
	onGot chan struct{} // if set, gets a value per packet written
}

func (w *written) write(_ uint32, p ctf.PacketInfo, recs []byte) error {
	w.mu.Lock()
	w.seqs = append(w.seqs, p.Seq)
	w.recs = append(w.recs, bytes.Clone(recs))
	w.mu.Unlock()
	if w.onGot != nil {
		w.onGot <- struct{}{}
	}
	return nil
}

// until spins (yielding) until cond, read under q's lock, holds, and
// fails the test if it does not within a minute.
func until(t *testing.T, q *traceQueue, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		q.mu.Lock()
		ok := cond()
		q.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		runtime.Gosched()
	}
}

// got waits for a packet to be written, failing the test after a minute.
func (w *written) got(t *testing.T, what string) {
	t.Helper()
	select {
	case <-w.onGot:
	case <-time.After(time.Minute):
		t.Fatalf("no packet written: %s", what)
	}
}

// A write that stalls does not stop the capture: packets queue up to the
// backlog, which the capture then waits for, and every packet is written
// in order with the bytes it had when queued, although the caller reused
// its buffer.
func TestTraceQueueAbsorbsAStall(t *testing.T) {
	release := make(chan struct{})
	var w written
	stalled := make(chan struct{})
	first := true
	b := newTraceBudget(4 << 10)
	q := newTraceQueue(b, func(stream uint32, p ctf.PacketInfo, recs []byte) error {
		if first {
			first = false
			close(stalled)
			<-release
		}
		return w.write(stream, p, recs)
	})
	buf := make([]byte, 1<<10)
	put := func(seq uint64) error {
		for i := range buf {
			buf[i] = byte(seq)
		}
		return q.packet(0, ctf.PacketInfo{Seq: seq}, buf)
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	q.flush()
	<-stalled
	// The writer is stuck on packet 0; three more fit in the 4 KiB.
	for seq := uint64(1); seq <= 3; seq++ {
		if err := put(seq); err != nil {
			t.Fatal(err)
		}
	}
	fifth := make(chan error)
	go func() { fifth <- put(4) }()
	b.mu.Lock()
	for b.used < 4<<10 || q.held != b.used {
		b.room.Wait() // given back: not while the writer is stuck
	}
	b.mu.Unlock()
	select {
	case err := <-fifth:
		t.Fatalf("packet 4 queued (%v) beyond the budget while the writer stalls", err)
	default:
	}
	close(release)
	if err := <-fifth; err != nil {
		t.Fatal(err)
	}
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(w.seqs) != "[0 1 2 3 4]" {
		t.Fatalf("written %v, want packets 0 to 4 in order", w.seqs)
	}
	for i, r := range w.recs {
		if !bytes.Equal(r, bytes.Repeat([]byte{byte(i)}, len(buf))) {
			t.Errorf("packet %d was written with the bytes of another", i)
		}
	}
}

// An idle writer is woken by a megabyte queued, by flush and by close,
// not by every packet.
func TestTraceQueueFlush(t *testing.T) {
	w := written{onGot: make(chan struct{}, 100)}
	q := newTraceQueue(newTraceBudget(traceBacklog), w.write)
	until(t, q, "the writer idle", func() bool { return q.idle })
	if err := q.packet(0, ctf.PacketInfo{Seq: 1}, []byte("small")); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	if len(q.pending) != 1 {
		t.Errorf("%d packets pending after a small one was queued to an idle writer, want it to wait for more", len(q.pending))
	}
	q.mu.Unlock()
	if err := q.flush(); err != nil {
		t.Fatal(err)
	}
	w.got(t, "flushed, the small packet is written without more")
	until(t, q, "the writer idle", func() bool { return q.idle })
	big := make([]byte, traceWakeBytes)
	if err := q.packet(0, ctf.PacketInfo{Seq: 2}, big); err != nil {
		t.Fatal(err)
	}
	w.got(t, "a megabyte queued is written without a flush")
	if err := q.packet(0, ctf.PacketInfo{Seq: 3}, []byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(w.seqs) != "[1 2 3]" {
		t.Errorf("written %v, want [1 2 3]: close writes what is pending", w.seqs)
	}
	if err := q.close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// The first write error stops the writing: the next packet, flush and
// close return it, and nothing queued after the failed packet is written.
func TestTraceQueueError(t *testing.T) {
	boom := errors.New("disk full")
	var w written
	q := newTraceQueue(newTraceBudget(traceBacklog), func(stream uint32, p ctf.PacketInfo, recs []byte) error {
		if p.Seq == 2 {
			return boom
		}
		return w.write(stream, p, recs)
	})
	for seq := uint64(1); seq <= 3; seq++ {
		if err := q.packet(0, ctf.PacketInfo{Seq: seq}, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	q.flush()
	until(t, q, "the failure", func() bool { return q.err != nil && len(q.pending) == 0 })
	if err := q.packet(0, ctf.PacketInfo{Seq: 4}, []byte{1}); !errors.Is(err, boom) {
		t.Errorf("packet after the failure: %v, want %v", err, boom)
	}
	if err := q.flush(); !errors.Is(err, boom) {
		t.Errorf("flush: %v, want %v", err, boom)
	}
	if err := q.close(); !errors.Is(err, boom) {
		t.Errorf("close: %v, want %v", err, boom)
	}
	if fmt.Sprint(w.seqs) != "[1]" {
		t.Errorf("written %v, want only the packet before the failure", w.seqs)
	}
}

// Hammered by a capture queueing packets of every size while the writer
// yields at random, every packet arrives once, in order, intact, and the
// backlog never holds more than its bound beyond one packet.
func TestTraceQueueHammer(t *testing.T) {
	const max = 64 << 10
	var w written
	rng := rand.New(rand.NewPCG(1, 2))
	var over bool
	budget := newTraceBudget(max)
	q := newTraceQueue(budget, func(stream uint32, p ctf.PacketInfo, recs []byte) error {
		budget.mu.Lock()
		if budget.used > max {
			over = true
		}
		budget.mu.Unlock()
		if p.Seq%7 == 0 {
			runtime.Gosched()
		}
		return w.write(stream, p, recs)
	})
	const n = 3000
	buf := make([]byte, 40<<10)
	for seq := range uint64(n) {
		size := rng.IntN(len(buf))
		for i := range size {
			buf[i] = byte(seq + uint64(i))
		}
		if err := q.packet(uint32(seq%2), ctf.PacketInfo{Seq: seq}, buf[:size]); err != nil {
			t.Fatal(err)
		}
		if seq%100 == 0 {
			q.flush()
		}
	}
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	if over {
		t.Error("the backlog held more than its bound")
	}
	if len(w.seqs) != n {
		t.Fatalf("%d packets written, want %d", len(w.seqs), n)
	}
	for i, seq := range w.seqs {
		if seq != uint64(i) {
			t.Fatalf("packet %d written as the %dth", seq, i)
		}
		for j, b := range w.recs[i] {
			if b != byte(seq+uint64(j)) {
				t.Fatalf("packet %d: byte %d is %d, want %d", seq, j, b, byte(seq+uint64(j)))
			}
		}
	}
}

// A packet given with its buffer is written from that buffer, which spare
// offers again only once the packet is written.
func TestTraceQueueGive(t *testing.T) {
	release := make(chan struct{})
	w := written{onGot: make(chan struct{}, 10)}
	q := newTraceQueue(newTraceBudget(traceBacklog), func(stream uint32, p ctf.PacketInfo, recs []byte) error {
		<-release
		return w.write(stream, p, recs)
	})
	buf := make([]byte, 64)
	copy(buf, "header|records")
	if err := q.give(0, ctf.PacketInfo{Seq: 1}, buf[7:14], buf); err != nil {
		t.Fatal(err)
	}
	q.flush()
	if s := q.spare(); s != nil {
		t.Errorf("spare offered a buffer (cap %d) before the packet in it was written", cap(s))
	}
	close(release)
	w.got(t, "the packet given")
	until(t, q, "the buffer back", func() bool { return len(q.free) == 1 })
	s := q.spare()
	if len(s) != 0 || cap(s) != len(buf) || &s[:1][0] != &buf[0] {
		t.Errorf("spare = len %d cap %d, want the given buffer, emptied", len(s), cap(s))
	}
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	if string(w.recs[0]) != "records" {
		t.Errorf("written %q, want the records given", w.recs[0])
	}
}

// A queue closed takes no more packets: packet and give fail at once,
// whatever the budget, and nothing more is written.
func TestTraceQueueClosed(t *testing.T) {
	var w written
	q := newTraceQueue(newTraceBudget(1), w.write)
	if err := q.packet(0, ctf.PacketInfo{Seq: 1}, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	if err := q.packet(0, ctf.PacketInfo{Seq: 2}, []byte("late")); !errors.Is(err, ctf.ErrClosed) {
		t.Errorf("packet after close: %v, want an error wrapping ctf.ErrClosed", err)
	}
	if err := q.give(0, ctf.PacketInfo{Seq: 3}, []byte("late"), nil); !errors.Is(err, ctf.ErrClosed) {
		t.Errorf("give after close: %v, want an error wrapping ctf.ErrClosed", err)
	}
	if fmt.Sprint(w.seqs) != "[1]" {
		t.Errorf("written %v, want the packet queued before close only", w.seqs)
	}
	if q.budget.used != 0 {
		t.Errorf("%d bytes of the budget kept after close", q.budget.used)
	}
}

// Traces share one budget: one whose disk is stuck holds its share, the
// others queue in what is left and always one packet, and a capture that
// waits for the budget has its own idle writer woken (its small packets
// would otherwise wait for a flush that its capture, waiting, cannot
// send).
func TestTraceBudgetShared(t *testing.T) {
	b := newTraceBudget(8 << 10)
	release := make(chan struct{})
	stuckWriting := make(chan struct{})
	stuck := newTraceQueue(b, func(uint32, ctf.PacketInfo, []byte) error {
		close(stuckWriting)
		<-release
		return nil
	})
	if err := stuck.packet(0, ctf.PacketInfo{Seq: 1}, make([]byte, 6<<10)); err != nil {
		t.Fatal(err)
	}
	stuck.flush()
	<-stuckWriting
	var w written
	other := newTraceQueue(b, w.write)
	until(t, other, "the other writer idle", func() bool { return other.idle })
	// 1 KiB fits beside the 6 of the stuck trace, below traceWakeBytes:
	// pending. The next 2 do not fit: the capture waits, which wakes its
	// writer, whose packet gives the budget back.
	queued := make(chan error, 1)
	go func() {
		err := other.packet(0, ctf.PacketInfo{Seq: 1}, make([]byte, 1<<10))
		if err == nil {
			err = other.packet(0, ctf.PacketInfo{Seq: 2}, make([]byte, 2<<10))
		}
		queued <- err
	}()
	select {
	case err := <-queued:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a capture waiting for the budget waits for ever: its own pending packet was not written")
	}
	if other.waits != 1 {
		t.Errorf("the second packet waited %d times for the budget, want once", other.waits)
	}
	// Holding nothing, a trace queues one packet whatever its size.
	big := newTraceQueue(b, w.write)
	if err := big.packet(0, ctf.PacketInfo{Seq: 9}, make([]byte, 16<<10)); err != nil {
		t.Fatal(err)
	}
	close(release)
	for _, q := range []*traceQueue{stuck, other, big} {
		if err := q.close(); err != nil {
			t.Fatal(err)
		}
	}
	if slices.Sort(w.seqs); fmt.Sprint(w.seqs) != "[1 2 9]" {
		t.Errorf("written %v, want packets 1, 2 and 9", w.seqs)
	}
	if b.used != 0 {
		t.Errorf("%d bytes of the budget kept after every trace closed", b.used)
	}
}

// While the disk is behind, the progress line says how much of what it
// counts is not yet in the file; otherwise nothing.
func TestTraceBehind(t *testing.T) {
	release := make(chan struct{})
	var w written
	q := newTraceQueue(newTraceBudget(traceBacklog), func(stream uint32, p ctf.PacketInfo, recs []byte) error {
		<-release
		return w.write(stream, p, recs)
	})
	tr := &traceOut{q: q}
	if s := tr.behind(); s != "" {
		t.Errorf("behind() = %q with nothing queued", s)
	}
	if err := q.packet(0, ctf.PacketInfo{Seq: 1}, make([]byte, diskBehind-1)); err != nil {
		t.Fatal(err)
	}
	if s := tr.behind(); s != "" {
		t.Errorf("behind() = %q with less than %d bytes queued", s, diskBehind)
	}
	if err := q.packet(0, ctf.PacketInfo{Seq: 2}, make([]byte, 1<<20+1)); err != nil {
		t.Fatal(err)
	}
	if s := tr.behind(); s != "  9.0 MiB not yet on disk" {
		t.Errorf("behind() = %q with 9 MiB queued behind a stalled write", s)
	}
	close(release)
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	if s := tr.behind(); s != "" {
		t.Errorf("behind() = %q once everything is written", s)
	}
	if (*traceOut)(nil).behind() != "" {
		t.Error("no trace (--no-output) shows a backlog")
	}
}
