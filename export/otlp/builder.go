package otlp

import (
	"github.com/tracemark/tracemark/ctf"
)

// prepareLocked returns c as e prepared it, preparing it the first time
// e sees it. Call with mu held.
func (e *Exporter) prepareLocked(c *Class) *prepared {
	if p := c.loadPrep(e); p != nil {
		return p
	}
	p := &prepared{Class: c, owner: e, scopeID: e.scopeID(c.Scope)}
	p.prepare()
	if c.Span != nil || c.StartKeys != nil {
		p.span = newSpanInfo(c)
	}
	c.prep.Store(p)
	return p
}

// loadPrep returns c as e prepared it, or nil if e did not yet. A copy
// of a Class is another class: what was prepared for the original is not
// the copy's.
func (c *Class) loadPrep(e *Exporter) *prepared {
	p, _ := c.prep.Load().(*prepared)
	if p != nil && p.owner == e && p.Class == c {
		return p
	}
	return nil
}

// prepared returns c as e prepared it, taking mu only the first time.
func (e *Exporter) prepared(c *Class) *prepared {
	if p := c.loadPrep(e); p != nil {
		return p
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.prepareLocked(c)
}

// LogBuilder encodes log records for an exporter without taking the
// exporter's lock, for a goroutine that decodes events in bunches (the
// packets of a recording): it adds a bunch's events to its own
// LogBuilder, then gives them all to the exporter with Exporter.Commit,
// which takes the lock once. Several goroutines may each fill their own
// LogBuilder for one exporter; a LogBuilder is used by one goroutine at a
// time.
//
// Add encodes only the log record: for the events of a class with Span
// or StartKeys, call Exporter.SpanOf too, in the order in which the
// events happened.
type LogBuilder struct {
	e       *Exporter
	scopes  []builderScope // indexed by scope id
	n       int
	skipped int // events not encoded: the queue was full
	rec     []byte
	scratch []byte

	// The record Begin started, if cur is set: its class, where its
	// records go, the offset of its size byte there, the next field,
	// and what End appends.
	cur         *prepared
	sb          *builderScope
	start, fi   int
	observed    int64
	trace, span []byte

	// The class of the latest Begin, as prepared, and where its
	// records go.
	lastClass *Class
	lastPrep  *prepared
	lastSB    *builderScope

	// AddCTF's plans, and the latest one used.
	plans       map[planKey]*ctfPlan
	lastPlanKey planKey
	lastPlan    *ctfPlan
}

// builderScope holds the records of one scope in a LogBuilder.
type builderScope struct {
	recs []byte  // repeated log_records fields, as in a batch
	ends []int32 // where each record ends in recs
}

// NewLogBuilder returns an empty LogBuilder for e.
func (e *Exporter) NewLogBuilder() *LogBuilder { return &LogBuilder{e: e} }

// Len returns the number of events added since the last Commit.
func (b *LogBuilder) Len() int { return b.n + b.skipped }

// Add encodes an event as a LogRecord into b, as LogAt would: event name
// c.Name, the fields as attributes, timestamp timeNS and observed
// timestamp observed (ns since the Unix epoch), scope c.Scope, truncated
// with bit i set if the recorder cut field i. The values are encoded
// before Add returns: byte slices may be reused afterwards. If the
// exporter's queue is full (and not WithBlock), the event is not encoded:
// Commit counts it as dropped.
func (b *LogBuilder) Add(cl *Class, timeNS, observed int64, vals []ctf.Value, truncated uint8) {
	b.abandon()
	if b.e.full.Load() {
		b.skipped++ // no work for an event that would be dropped
		return
	}
	c := b.e.prepared(cl)
	for len(b.scopes) <= c.scopeID {
		b.scopes = append(b.scopes, builderScope{})
		b.lastClass = nil // lastSB points into the old array
	}
	sb := &b.scopes[c.scopeID]
	if n := logRecordLen(c, vals, truncated); n >= 0 {
		sb.recs = appendTag(sb.recs, 2, wireBytes)
		sb.recs = appendVarint(sb.recs, uint64(n))
		sb.recs, b.scratch = appendLogRecord(sb.recs, b.scratch, c, timeNS, observed, vals, truncated)
	} else {
		b.rec, b.scratch = appendLogRecord(b.rec[:0], b.scratch, c, timeNS, observed, vals, truncated)
		sb.recs = appendBytesField(sb.recs, 2, b.rec)
	}
	sb.ends = append(sb.ends, int32(len(sb.recs)))
	b.n++
}

// Commit gives the records of b to the exporter, as many Log calls would,
// taking the exporter's lock once, and empties b. Events that found the
// queue full in Add, and records that find it full now, are dropped and
// counted (unless WithBlock: Commit waits for
// room); Commit returns how many were dropped. b must be e's.
func (e *Exporter) Commit(b *LogBuilder) (dropped int) {
	if b.e != e {
		panic("otlp: Commit of another exporter's LogBuilder")
	}
	b.abandon()
	if b.n+b.skipped == 0 {
		return 0
	}
	dropped = b.skipped
	e.mu.Lock()
	e.events.Add(uint64(b.n + b.skipped))
	e.dropped.Add(uint64(b.skipped))
	for id := range b.scopes {
		sb := &b.scopes[id]
		recs := sb.recs[:0]
		if len(sb.ends) > 0 {
			var d int
			d, recs = e.commitScope(id, sb.recs, sb.ends)
			dropped += d
		}
		sb.recs, sb.ends = recs, sb.ends[:0]
	}
	e.mu.Unlock()
	b.n, b.skipped = 0, 0
	return dropped
}

// commitScope appends the records of one scope to the current batches,
// sealing each that fills up, in runs copied at once. The last run, if
// it starts a batch's records of the scope, is not copied: the batch
// takes recs, and gives its own empty buffer back. Only the last: with
// WithBlock, waiting for room lets a sender send and free a batch, and
// the buffer it took with it, while later runs would still be read out of
// recs. commitScope returns the
// records dropped, and the buffer for the builder's next records: recs
// emptied, or the one the batch gave back. Call with mu held; the
// records are counted in events.
func (e *Exporter) commitScope(scope int, recs []byte, ends []int32) (dropped int, next []byte) {
	next = recs[:0]
	i, off := 0, 0
	for i < len(ends) {
		for e.cfg.Block && !e.closed && e.queued >= e.cfg.QueueSize {
			e.seal(sigLogs)
			e.seal(sigTraces)
			e.room.Wait()
		}
		if e.closed || e.queued >= e.cfg.QueueSize {
			n := len(ends) - i
			e.dropped.Add(uint64(n))
			return dropped + n, next
		}
		bt := e.current(sigLogs)
		// As many records as the queue and the batch have room for
		// (a batch being filled is never full: it is sealed when it
		// fills), and at least one.
		left := len(ends) - i
		j := i + min(left, e.cfg.QueueSize-e.queued, e.cfg.BatchSize-bt.n)
		if bt.n == 0 && left <= 2*e.cfg.BatchSize && left <= e.cfg.QueueSize-e.queued {
			// An empty batch takes the rest of the commit whole, up
			// to twice its size, rather than copy all but its tail:
			// a commit of a packet's records (more than a batch's
			// 8192) then becomes a batch without a copy.
			j = len(ends)
		}
		room := e.cfg.BatchBytes - bt.size
		for j > i+1 && int(ends[j-1])-off > room {
			j--
		}
		end := int(ends[j-1])
		for len(bt.scopes) <= scope {
			bt.scopes = append(bt.scopes, scopeBuf{})
		}
		sb := &bt.scopes[scope]
		if sb.n == 0 && j == len(ends) {
			// The batch takes the builder's buffer, which the
			// builder no longer writes to and this Commit no longer
			// reads; what went before off is in earlier batches.
			next, sb.recs, sb.skip = sb.recs[:0], recs[:end], off
			if want := len(recs) + len(recs)/4; cap(next) < want {
				// A new batch has no buffer, and one made for
				// smaller records would have to grow: the builder
				// gets one with room for more than it held.
				next = make([]byte, 0, want)
			}
		} else {
			// A new buffer with room for a builder's records, so
			// that it can be given to one later (above) as it is.
			sb = bt.scope(scope, max(e.hint(scope), min(len(recs)+len(recs)/4, e.cfg.BatchBytes)))
			sb.recs = append(sb.recs, recs[off:end]...)
		}
		n := j - i
		e.queued += n
		e.noteFull()
		sb.n += n
		bt.n += n
		bt.size += end - off
		if bt.n >= e.cfg.BatchSize || bt.size >= e.cfg.BatchBytes {
			e.seal(sigLogs)
		}
		i, off = j, end
	}
	return dropped, next
}

// SpanOf does for an event what Log does beyond its log record: remember
// the span start it is, or export the span it ends or its duration
// field gives. It does nothing for a class with neither Span nor
// StartKeys. Starts pair with ends in the order SpanOf sees them, so
// call it in the order in which the events happened.
func (e *Exporter) SpanOf(cl *Class, timeNS int64, vals []ctf.Value, truncated uint8) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.prepareLocked(cl); c.span != nil {
		e.spans(c, timeNS, vals, truncated)
	}
}
