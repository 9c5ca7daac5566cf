// Package session records marker events, the way LTTng sessions and
// channels do: an enabled marker's event is copied into the session's
// lock-free buffers so cheaply that recording can stay on in production,
// and a reader drains the buffers into a CTF 1.8 trace.
//
// # Lifecycle
//
//	s, err := session.New("debug", session.WithBufferSize(1 << 20))
//	s.Enable("http:*", `status >= 500 && path.startsWith("/api")`)
//	s.Enable("db:query", "")
//	tw, err := session.CreateTrace("./trace", s)
//	s.Start()
//	... // tw.Flush() periodically, or go tw.Run(ctx, 100*time.Millisecond)
//	s.Stop()   // no event is recorded after Stop returns
//	tw.Close() // writes the rest; Babeltrace 2 reads ./trace
//	s.Destroy()
//
// New takes the session's name and options (WithMode, WithBufferSize,
// WithSubBufSize, WithMaxStringLen, WithEventContext), each of which changes one default
// and documents the values it accepts; New fails with an error naming the
// option given a value it does not.
//
// Several sessions can record at once, each with its own rules and
// buffers; a marker enabled in two sessions is recorded in both.
//
// # Rules and filters
//
// A rule is a glob over "provider:event" names with an optional filter, a
// CEL expression (cel.dev) over the marker's fields. The session evaluates
// a filter's checked form, which the tracemark command compiles with CEL
// and sends with the source ([Session.EnableChecked]), without linking
// CEL; a program that gives CEL source to [Session.Enable] (or
// TRACEMARK_FILTER) imports package session/celfilter, which compiles it
// in the process. The filter is
// type-checked against every marker the glob matches when the rule is
// enabled, and against markers defined later when they appear; an error
// names the marker and its fields. Rules apply to markers defined or
// loaded after the rule. When several rules of a session match a marker,
// an event is recorded once if any of their filters accepts it.
//
// Filters run in the goroutine that fires the marker, so their cost is
// bounded: a filter whose estimated cost on any event exceeds the budget
// (about 2 µs) is refused with [ErrFilterCost], and a CEL program that
// reaches its run-time cost limit anyway drops the event, counted in
// Stats.OverCost. Filters see string and byte fields cut to
// WithMaxStringLen, as they are recorded.
//
// # Buffers
//
// Each session has one buffer shard per P (Go's scheduler processors,
// GOMAXPROCS of them, which follows a container's CPU limit): a recording
// goroutine pins itself to its P, so it is the only writer of its shard
// and takes no lock. If GOMAXPROCS grows while recording, the new Ps share
// one more shard, the overflow stream, under a lock. A shard is a ring of sub-buffers, each of which
// becomes one CTF packet. In Discard mode a full shard drops new events; in
// Overwrite mode it overwrites the oldest sub-buffer (a flight recorder,
// read with Snapshot or WriteSnapshot, or on a trigger: SnapshotOn).
//
// All sessions of a process share one budget for their buffers and
// snapshot copies (MemoryBudget, TRACEMARK_MEMORY, SetMemoryBudget): a
// session or snapshot that would exceed it is refused with an error
// wrapping ErrMemoryBudget, and Destroy gives a session's memory back.
//
// # Events
//
// A recorded event holds a monotonic timestamp in nanoseconds (Clock gives
// the wall-clock time of timestamp 0), the session's id for the marker,
// with WithEventContext its context fields (process id, program name, shard, thread id), and the field values in the CTF layout described in encode.go. Strings and
// byte slices longer than WithMaxStringLen are cut, and the cut is
// marked in the event's _truncated field and counted, never silent.
//
// # Counters
//
// Stats are exact: after Stop and a final Drain, for every marker,
// Delivered + Discarded + Filtered equals the number of times it fired
// while the session recorded it (OverCost counts the filtered events
// whose filter was stopped at its cost limit), and the trace's
// events_discarded fields carry the losses so that Babeltrace reports them.
//
// # Batch programs
//
// Programs that exit before anyone can attach are traced from their
// environment with StartFromEnv:
//
//	TRACEMARK_ENABLE='http:*,db:query' TRACEMARK_OUTPUT=./trace ./myprog
//
// which needs one deferred call in main to flush the trace at exit.
package session
