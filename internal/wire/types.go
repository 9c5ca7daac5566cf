package wire

import "time"

// Version is the protocol version: the number in every endpoint's path
// prefix (/v1/...) and in [Info] and [Hello]. Additions that old clients
// can ignore (new response fields, new endpoints, new frame types) keep
// the version; anything else is a new version with a new prefix.
const Version = 1

// Prefix is the path prefix of every endpoint of this version.
const Prefix = "/v1"

// ContentTypeJSON is the media type of requests, responses and errors.
const ContentTypeJSON = "application/json"

// ContentTypeFrames is the media type of event streams (see [Frame]).
const ContentTypeFrames = "application/vnd.tracemark.frames.v1"

// Info describes an instrumented process: the answer of GET /v1/info and
// one row of `tracemark ps`.
type Info struct {
	Protocol int `json:"protocol"`
	// Revision is the agent's [Revision] of the protocol (0 for agents
	// older than revisions).
	Revision   int       `json:"revision,omitempty"`
	PID        int       `json:"pid"`
	UID        int       `json:"uid"`
	Program    string    `json:"program"`
	Args       []string  `json:"args"`
	Hostname   string    `json:"hostname,omitempty"`
	GoVersion  string    `json:"go_version"`
	MainModule string    `json:"main_module,omitempty"`
	Started    time.Time `json:"started"`
	Socket     string    `json:"socket"`
	// Markers is the number of markers defined in the process, Enabled
	// the number with at least one probe.
	Markers int `json:"markers"`
	Enabled int `json:"enabled"`
	// Sessions counts named sessions, Recordings ephemeral ones.
	Sessions   int `json:"sessions"`
	Recordings int `json:"recordings"`
	// Taint is the process taint in kernel letters ("" when clean).
	Taint string `json:"taint"`
	// ProbeFaults counts probe panics recovered in the process.
	ProbeFaults uint64 `json:"probe_faults"`
	// RefusedPeers counts connections refused because the peer was
	// another user; Overloaded those refused for lack of capacity.
	RefusedPeers uint64 `json:"refused_peers"`
	Overloaded   uint64 `json:"overloaded"`
	// Tracemark is the version of the tracemark module the program was
	// built with (a tag, a pseudo-version or "(devel)"): what `tracemark ps`
	// shows in its VERSION column.
	Tracemark string `json:"tracemark,omitempty"`
}

// Field is one field of a marker's schema.
type Field struct {
	Name string `json:"name"`
	// Kind is the marker kind: int64, uint8, float64, bool, string,
	// bytes, duration, ...
	Kind string `json:"kind"`
}

// Marker describes one marker of the process: an element of
// GET /v1/markers and a row of `tracemark list`.
type Marker struct {
	Name      string  `json:"name"`
	Provider  string  `json:"provider"`
	Event     string  `json:"event"`
	Fields    []Field `json:"fields"`
	Format    string  `json:"format"`
	Location  string  `json:"location"`
	Module    string  `json:"module,omitempty"`
	Doc       string  `json:"doc,omitempty"`
	Stability string  `json:"stability"`
	// Enabled reports whether at least one probe is connected; Probes
	// counts them (sessions of any client, triggers, in-process probes).
	Enabled bool `json:"enabled"`
	Probes  int  `json:"probes"`
	// Refused says why the marker's events are not delivered (a module
	// refused by policy), or is empty.
	Refused string `json:"refused,omitempty"`
	// Sessions names the agent's sessions that record the marker.
	Sessions []string `json:"sessions,omitempty"`
	// Events counts the marker's events seen by the agent's live
	// sessions: delivered to a client, discarded or filtered out. Events
	// of named sessions count once they are read (snapshots do not
	// consume, so they do not count).
	Events uint64 `json:"events"`
	// Span says how exporters make spans of the events, if the marker
	// declares it.
	Span *MarkerSpan `json:"span,omitempty"`
}

// MarkerList is the answer of GET /v1/markers.
type MarkerList struct {
	Markers []Marker `json:"markers"`
}

// Rule is an enable rule: a glob over marker names and an optional CEL
// filter over the marker's fields, such as `status >= 500`, with its
// checked form (see CheckedFilter), which the agent evaluates. An agent
// that links CEL also takes a filter without its checked form.
type Rule struct {
	Pattern string        `json:"pattern"`
	Filter  string        `json:"filter,omitempty"`
	Checked CheckedFilter `json:"checked,omitempty"`
}

// RuleInfo is a rule of a session as the agent reports it.
type RuleInfo struct {
	Pattern string `json:"pattern"`
	Filter  string `json:"filter,omitempty"`
	// Refused lists markers the rule matches but could not record (its
	// filter does not type-check for them).
	Refused []string `json:"refused,omitempty"`
	// LeftOut lists the markers the rule matches but leaves out because
	// they lack fields its filter names.
	LeftOut []LeftOut `json:"left_out,omitempty"`
}

// LeftOut is a marker that a rule matches and leaves out: its filter names
// fields (Missing) that the marker does not have.
type LeftOut struct {
	Marker  string   `json:"marker"`
	Missing []string `json:"missing"`
}

// SessionInfo describes a session: an element of GET /v1/sessions.
type SessionInfo struct {
	Name string `json:"name"`
	// Ephemeral sessions belong to a client's recording (record, stream,
	// stats) and end with it; Recording is then the recording's id.
	Ephemeral bool   `json:"ephemeral,omitempty"`
	Recording string `json:"recording,omitempty"`
	Client    string `json:"client,omitempty"`
	Mode      string `json:"mode"`
	State     string `json:"state"`
	// Buffer is the buffer size per stream (shard); SubBuffer the
	// packet size. A session has one stream per P of the process
	// (GOMAXPROCS when it was created), and one more if GOMAXPROCS grew
	// since.
	Buffer    int `json:"buffer"`
	SubBuffer int `json:"sub_buffer"`
	Streams   int `json:"streams"`
	// Memory is the record memory the session holds, in bytes: its
	// buffers, and a snapshot's copy while one runs.
	Memory  int64      `json:"memory"`
	Created time.Time  `json:"created"`
	Rules   []RuleInfo `json:"rules"`
	Stats   Stats      `json:"stats"`
	// Trigger is the named session's snapshot trigger, if any.
	Trigger *TriggerInfo `json:"trigger,omitempty"`
}

// SessionList is the answer of GET /v1/sessions.
type SessionList struct {
	Sessions []SessionInfo `json:"sessions"`
	// MemoryBudget is the process's budget for recording memory, in
	// bytes, and MemoryInUse what all its sessions hold, including those
	// the program created itself, which Sessions does not list.
	MemoryBudget int64 `json:"memory_budget,omitempty"`
	MemoryInUse  int64 `json:"memory_in_use"`
}

// Stats are a session's exact counters (see session.Stats).
type Stats struct {
	Recorded  uint64 `json:"recorded"`
	Discarded uint64 `json:"discarded"`
	// Unsharded counts the discarded events that fired on a P the
	// session had no buffer for (GOMAXPROCS raised while recording) and
	// that the memory budget left no room to add one for.
	Unsharded uint64 `json:"unsharded,omitempty"`
	Filtered  uint64 `json:"filtered"`
	// OverCost counts the events, among Filtered, dropped because a filter
	// reached its run-time cost limit.
	OverCost  uint64        `json:"over_cost,omitempty"`
	Truncated uint64        `json:"truncated"`
	Bytes     uint64        `json:"bytes"`
	Delivered uint64        `json:"delivered"`
	Markers   []MarkerStats `json:"markers,omitempty"`
}

// MarkerStats are the counters of one marker in a session.
type MarkerStats struct {
	Name      string `json:"name"`
	Delivered uint64 `json:"delivered"`
	Discarded uint64 `json:"discarded"`
	Filtered  uint64 `json:"filtered"`
	OverCost  uint64 `json:"over_cost,omitempty"`
	Truncated uint64 `json:"truncated"`
}

// RecordRequest is the body of POST /v1/record: record into an ephemeral
// session whose events stream back in the response. Every field but Rules
// is optional.
type RecordRequest struct {
	// Rules lists what to record: 1 to MaxRules rules.
	Rules []Rule `json:"rules"`
	// Mode is "discard" (default) or "overwrite". In overwrite mode the
	// agent sends the packets only when the recording ends: the most
	// recent events the buffers hold.
	Mode string `json:"mode,omitempty"`
	// Buffer is the buffer size per shard, such as "4M" (default 4M,
	// from MinBuffer to MaxBuffer). The session has one shard per P of
	// the process (GOMAXPROCS), and all must fit in its recording
	// memory budget.
	Buffer string `json:"buffer,omitempty"`
	// SubBuffer is the sub-buffer size, hence the size of the packets,
	// such as "256K": a power of two from MinSubBuffer to MaxSubBuffer,
	// at most half of Buffer (default: 256K, or a quarter of Buffer if
	// smaller). The reader is woken each time a sub-buffer fills.
	SubBuffer string `json:"sub_buffer,omitempty"`
	// Duration ends the recording after that long, in Go syntax such as
	// "30s" (default: until stopped, at most MaxDuration).
	Duration string `json:"duration,omitempty"`
	// FlushInterval bounds how long recorded events wait before they are
	// sent (default 100ms): the agent sends packets as soon as a
	// sub-buffer fills, and a quiet buffer's partial packets after this.
	FlushInterval string `json:"flush_interval,omitempty"`
	// StatsInterval is how often a stats frame is sent (default 1s).
	StatsInterval string `json:"stats_interval,omitempty"`
	// Client is a free label shown in the session list, such as
	// "tracemark record".
	Client string `json:"client,omitempty"`
	// GoTrace asks for Go's execution trace of the recording's window
	// too (runtime/trace), in FrameGoTrace frames. Only one Go trace runs
	// in a process: if one already runs, the request fails with
	// CodeConflict.
	GoTrace bool `json:"go_trace,omitempty"`
	// Context lists the context fields that every record carries after
	// its header, in this order, the CTF stream event context: "pid",
	// "procname", "cpu", "vtid", "tid" (see package session's
	// ContextField), and the hello frame says so ([Hello.Context]). An
	// unknown field, or one given twice, fails with CodeInvalid; thread
	// ids where the process cannot have them, with CodeUnavailable.
	// Agents of protocol 1.1 and older refuse the field
	// (CodeUnknownField).
	Context []string `json:"context,omitempty"`
}

// EnableRequest is the body of POST /v1/sessions/{name}/enable: add rules
// to a named session, creating and starting it if needed.
type EnableRequest struct {
	Rules []Rule `json:"rules"`
	// Mode and Buffer configure a new session. For an existing one they
	// may be omitted, and must match if given.
	Mode   string `json:"mode,omitempty"`
	Buffer string `json:"buffer,omitempty"`
	// Trigger, if set, makes the session write a snapshot whenever a
	// marker matching On fires (a flight recorder's trigger).
	Trigger *TriggerRequest `json:"trigger,omitempty"`
	// Context makes a new session record context fields, as
	// RecordRequest.Context does; for an existing session, it may be
	// omitted, and must match if given (CodeConflict).
	Context []string `json:"context,omitempty"`
}

// TriggerRequest asks a named session to snapshot itself when a marker
// fires: into a new directory under Dir (an absolute path in the traced
// process's file system), at most once per Every (a Go duration, default
// 10s, at least 100ms).
type TriggerRequest struct {
	On    string `json:"on"`
	Dir   string `json:"dir"`
	Every string `json:"every,omitempty"`
	// GoTrace keeps Go's flight recorder (runtime/trace.FlightRecorder)
	// running beside the session and writes its window next to each
	// snapshot, as DIR.go.trace for snapshot directory DIR. Only one Go
	// flight recorder runs in a process: if one already runs, the request
	// fails with CodeConflict.
	GoTrace bool `json:"go_trace,omitempty"`
}

// TriggerInfo describes a session's snapshot trigger and what it did.
type TriggerInfo struct {
	On    string `json:"on"`
	Dir   string `json:"dir"`
	Every string `json:"every"`
	Fired uint64 `json:"fired"`
	Taken uint64 `json:"taken"`
	// Failed counts snapshots that could not be written (not in Taken);
	// LastError says why the last one failed.
	Failed       uint64 `json:"failed"`
	Suppressed   uint64 `json:"suppressed"`
	LastSnapshot string `json:"last_snapshot,omitempty"`
	LastError    string `json:"last_error,omitempty"`
	// GoTrace says that each snapshot has Go's flight recorder window
	// beside it (TriggerRequest.GoTrace).
	GoTrace bool `json:"go_trace,omitempty"`
}

// DisableRequest is the body of POST /v1/sessions/{name}/disable: remove
// the session's rules with these patterns.
type DisableRequest struct {
	Patterns []string `json:"patterns"`
}

// Clock describes the timestamps of an event stream: the fields of a CTF
// clock (see ctf.Clock).
type Clock struct {
	Name          string `json:"name"`
	Frequency     uint64 `json:"frequency"`
	OffsetSeconds int64  `json:"offset_s"`
	Offset        uint64 `json:"offset"`
	Description   string `json:"description,omitempty"`
}

// Hello is the payload of the first frame of an event stream.
type Hello struct {
	Protocol int `json:"protocol"`
	// Revision is the agent's [Revision] of the protocol (0 for agents
	// older than revisions): the client checks it ([CheckAgent]).
	Revision int `json:"revision,omitempty"`
	// Recording is the id to stop the recording with
	// (POST /v1/recordings/{id}/stop); empty for snapshots.
	Recording string    `json:"recording,omitempty"`
	Session   string    `json:"session"`
	Mode      string    `json:"mode"`
	PID       int       `json:"pid"`
	Program   string    `json:"program"`
	Streams   int       `json:"streams"`
	Started   time.Time `json:"started"`
	Clock     Clock     `json:"clock"`
	// Env is the CTF environment of a trace written from the stream
	// (hostname, procname, vpid, tracer_name, ...).
	Env map[string]string `json:"env"`
	// Matched lists the markers the rules matched when recording
	// started; markers defined later join when they match.
	Matched []string `json:"matched"`
	// Rules are the recording's rules as the agent took them, with the
	// markers each leaves out; absent from snapshots.
	Rules []RuleInfo `json:"rules,omitempty"`
	// Duration is the recording's duration, 0 if it runs until stopped.
	Duration time.Duration `json:"duration_ns,omitempty"`
	// Buffer and SubBuffer are the session's buffer size per shard and
	// sub-buffer size, in bytes.
	Buffer    int `json:"buffer,omitempty"`
	SubBuffer int `json:"sub_buffer,omitempty"`
	// GoTrace says that the stream carries Go's execution trace
	// (RecordRequest.GoTrace); agents that predate it never set it.
	GoTrace bool `json:"go_trace,omitempty"`
	// Context lists the context fields that every record carries after
	// its header, in order (the CTF stream event context;
	// RecordRequest.Context). A [Decoder] needs to know
	// ([Decoder.SetContext]).
	Context []string `json:"context,omitempty"`
}

// ClassField is one field of an event class.
type ClassField struct {
	Name string `json:"name"`
	// Type is the CTF type: int8 ... int64, uint8 ... uint64, float32,
	// float64, string or bytes.
	Type string `json:"type"`
	// Kind is the marker kind, which says more than the CTF type
	// (bool and duration are integers in CTF).
	Kind string `json:"kind"`
}

// EventClass describes the records of one marker in a stream: its CTF
// event class, with the id records carry.
type EventClass struct {
	ID     uint16       `json:"id"`
	Name   string       `json:"name"`
	Fields []ClassField `json:"fields"`
	// Truncation says the recorder may cut fields. Records with a cut
	// field carry TruncatedID and end with a uint8 bitmask of the fields
	// the recorder cut; the others carry ID and have no bitmask. Without
	// TruncatedID (0, which no class uses), every record ends with the
	// bitmask.
	Truncation  bool   `json:"truncation,omitempty"`
	TruncatedID uint16 `json:"truncated_id,omitempty"`
	// Span is the marker's span declaration, written into trace files.
	Span *MarkerSpan `json:"span,omitempty"`
	// Module is the module the marker belongs to, "path@version" as
	// in MarkerInfo, written into trace files: the scope of its events
	// when a trace is exported. Older agents leave it out.
	Module string `json:"module,omitempty"`
}

// Classes is the payload of a classes frame.
type Classes struct {
	Classes []EventClass `json:"classes"`
}

// End reasons.
const (
	// EndStopped: the client asked the recording to stop.
	EndStopped = "stopped"
	// EndDuration: the requested duration elapsed.
	EndDuration = "duration"
	// EndShutdown: the agent is closing (the process is exiting).
	EndShutdown = "shutdown"
	// EndSnapshot: a snapshot is complete.
	EndSnapshot = "snapshot"
	// EndError: the recording failed; End.Error says why.
	EndError = "error"
)

// End is the payload of the last frame of an event stream. A stream that
// ends without it was cut: the process died or the connection broke.
type End struct {
	Reason string `json:"reason"`
	Error  *Error `json:"error,omitempty"`
	// Stats are the session's final counters.
	Stats *Stats `json:"stats,omitempty"`
}
