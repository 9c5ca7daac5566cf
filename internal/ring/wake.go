package ring

import "time"

// The reader's wake-up. A reader that has drained everything waits in
// [Buffer.Wait]; the writer that next closes a sub-buffer wakes it, so the
// reader keeps up with the writers without polling and without any cost on
// the writers' per-record path.
//
// The protocol is a Dekker handshake between two flags, both accessed with
// sequentially consistent atomics:
//
//	reader (Wait)                          writer (switchSub)
//	R1 sleeping = true                     W1 close cur: writing -> full (CAS)
//	R2 any sub-buffer full? -> return      W2 sleeping? -> CAS it false, send
//	R3 park on wake, timer or stop
//
// Whatever the interleaving, either R2 sees W1's full sub-buffer, or W2
// sees R1's flag and sends: a wake-up cannot be lost. The writer sends
// only after winning the CAS that clears the flag, so at most one send
// follows each R1, into a channel of capacity one that is empty whenever
// the flag is set: the non-blocking send never fails and never blocks,
// which matters because the writer is pinned. A reader that returns
// without receiving (R2 found work, or the timer or stop fired) clears the
// flag itself, and if a writer won the CAS first, receives its token, so
// the channel is empty again before the next R1.
//
// The writer's cost: W2's load, on the switch path only (a plain load on
// amd64); while the reader sleeps, one CAS and one channel send per sleep,
// which readies the reader's goroutine.

// Wait blocks the reader until a writer fills a sub-buffer, until timeout
// elapses (if positive), or until stop is closed (or receives). It returns
// at once if a full sub-buffer is already waiting. It reports whether
// there is a full sub-buffer to drain (woken by a writer, or found one);
// false means the timer or stop ended the wait, and the caller decides
// whether a partial sub-buffer is worth draining.
//
// Only the reader calls Wait, between its calls of Drain (one reader at a
// time, as for Drain).
func (b *Buffer) Wait(stop <-chan struct{}, timeout time.Duration) bool {
	if !b.waited.Load() {
		b.waited.Store(true)
	}
	b.announceSleep()
	if b.recheck() {
		return true
	}
	return b.park(stop, timeout)
}

// announceSleep is R1: writers closing a sub-buffer from now on wake the
// reader.
func (b *Buffer) announceSleep() { b.sleeping.Store(true) }

// recheck is R2: it reports whether a sub-buffer is full, and if so takes
// the announcement back.
func (b *Buffer) recheck() bool {
	if !b.hasFull() {
		return false
	}
	b.cancelSleep()
	return true
}

// park is R3: it waits for a writer's token, the timer or stop.
func (b *Buffer) park(stop <-chan struct{}, timeout time.Duration) bool {
	var timer <-chan time.Time
	if timeout > 0 {
		if b.timer == nil {
			b.timer = time.NewTimer(timeout)
		} else {
			b.timer.Reset(timeout)
		}
		timer = b.timer.C
		defer b.timer.Stop()
	}
	select {
	case <-b.wake:
		return true // the writer cleared the flag
	case <-stop:
	case <-timer:
	}
	return b.cancelSleep()
}

// cancelSleep clears the sleeping flag. If a writer cleared it first, that
// writer sends (or is about to send: it is pinned, between its CAS and
// its send) a token, which cancelSleep receives so that the channel is
// empty again; it then reports true.
func (b *Buffer) cancelSleep() bool {
	if b.sleeping.CompareAndSwap(true, false) {
		return false
	}
	<-b.wake
	return true
}

// hasFull reports whether a sub-buffer is full: closed by its writer and
// not yet freed by the reader.
func (b *Buffer) hasFull() bool {
	for i := range b.shards {
		subs := b.shards[i].subs
		for j := range subs {
			if subs[j].state.Load()&^stReader == stFull {
				return true
			}
		}
	}
	return false
}

// wakeReader is W2, run by a writer, pinned, right after it closed a
// sub-buffer (W1): if the reader sleeps, wake it.
func (b *Buffer) wakeReader() {
	if b.sleeping.Load() && b.sleeping.CompareAndSwap(true, false) {
		b.wakeups.Add(1)
		select {
		case b.wake <- struct{}{}:
		default: // cannot happen (see above); never block a pinned writer
		}
	}
}

// Lagging reports, to the writer pinned to shard pid (it reads the
// writer's state), whether it should yield its P to the reader: the shard
// switched sub-buffers since the last call, and the reader, which waits
// with [Buffer.Wait], has left at least a quarter of the shard's
// sub-buffers (two at least) full. The writer then yields (see the
// session's recorder): when every P runs a goroutine that does not block,
// the woken reader is runnable but gets no P until the scheduler preempts
// one, up to 10 ms later, by which time a shard of a few MiB has
// overflowed. Reporting once per switch bounds the yields to one per
// sub-buffer, however many records take the writer's slow path near the
// end of one. It costs a load and a store of the writer's own state, and
// while a switch is pending, one load of the reader's flag and one of a
// sub-buffer's state. It is false for the overflow shard and for a buffer
// whose reader never waits (a flight recorder, or a reader polled on a
// timer).
func (b *Buffer) Lagging(pid int) bool {
	if uint(pid) >= uint(len(b.shards)) {
		return false
	}
	s := &b.shards[pid].shard
	raceAcquire(s) // the pinned writer's state, as in Reserve
	switched := s.switched
	s.switched = false
	cur := s.curIdx
	raceRelease(s)
	if !switched || !b.waited.Load() {
		return false
	}
	n := len(s.subs)
	k := min(max(2, n/4), n-1)
	// The full sub-buffers are the k newest closed ones, behind cur in
	// ring order: the reader frees the oldest first. So if the one k
	// behind cur is full, so are the k-1 after it.
	i := cur - k
	if i < 0 {
		i += n
	}
	return s.subs[i].state.Load()&^stReader == stFull
}
