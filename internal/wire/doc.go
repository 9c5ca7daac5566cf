// Package wire is the protocol between the tracemark agent, inside an
// instrumented process, and its clients, the tracemark command first: the
// request and response types and their limits, the framing of event
// streams, the decoding of their records, and where sockets live. Both
// sides import it, so it depends on no package of this module but the
// leaf packages ctf and internal/ident (a test checks it): the agent
// validates requests in agent/internal/request, and the client and the
// discovery of agents are package internal/client.
//
// # Transport
//
// HTTP/1.1 over a unix stream socket, one per process, named PID.sock in
// the user's runtime directory ([SocketDir]: $XDG_RUNTIME_DIR/tracemark,
// or /tmp/tracemark-UID). Requests and responses are JSON, so curl is a
// client:
//
//	S=$XDG_RUNTIME_DIR/tracemark/1234.sock
//	curl --unix-socket $S http://x/v1/info
//	curl --unix-socket $S 'http://x/v1/markers?glob=http:*'
//	curl --unix-socket $S http://x/v1/sessions/flight/enable \
//	     -d '{"rules":[{"pattern":"http:*"}],"mode":"overwrite","buffer":"4M"}'
//	curl --unix-socket $S http://x/v1/record --output events.bin \
//	     -d '{"rules":[{"pattern":"http:request_done","filter":"status >= 500",
//	          "checked":{"v":1,"expr":{"op":"ge","args":[{"op":"field","field":"status"},{"op":"int","int":500}]}}}],
//	          "duration":"10s"}'
//
// (A filter goes with its checked form, which tracemark compiles from the
// source with CEL; an agent whose program imports session/celfilter also
// takes the source alone.)
//
// The host name is ignored. Only the process's user and root may connect:
// the agent checks the peer's credentials (SO_PEERCRED) and answers anyone
// else 403 with code "forbidden".
//
// # Versions
//
// Every path starts with the protocol version, /v1 ([Prefix]); [Info] and
// [Hello] carry it too ([Version]). Within a version, the agent may add
// response fields, endpoints and frame types: clients ignore unknown JSON
// fields in responses and skip frames of unknown types. Requests, on the
// contrary, are strict: an unknown field is an error (code
// "unknown_field"), so that a misspelt option is never silently ignored,
// and a client that needs a newer agent finds out. A change that older
// clients cannot read is a new revision ([Revision], in [Info] and
// [Hello]; "1.2"): clients send theirs in the [HeaderProtocol] request
// header, the agent refuses clients of an older revision ([CodeProtocol])
// and clients refuse streams of a newer one ([CheckAgent]). Anything else
// is a new version, served beside the old one.
//
// # Endpoints
//
//	GET    /v1/info                        Info: the process, its markers and sessions (tracemark ps)
//	GET    /v1/markers[?glob=GLOB]         MarkerList: markers, fields, state (tracemark list)
//	GET    /v1/sessions                    SessionList: named and ephemeral sessions
//	GET    /v1/sessions/{name}             SessionInfo
//	POST   /v1/sessions/{name}/enable      EnableRequest → SessionInfo: add rules, create and start if needed
//	POST   /v1/sessions/{name}/disable     DisableRequest → SessionInfo: remove the rules with these patterns
//	DELETE /v1/sessions/{name}             → SessionInfo: destroy the session
//	POST   /v1/sessions/{name}/snapshot    → event stream: what the session holds, not consumed
//	POST   /v1/record                      RecordRequest → event stream: an ephemeral recording
//	POST   /v1/recordings/{id}/stop        stop a recording: its stream drains and ends
//	GET    /v1/modules                     ModuleList: loaded modules, their taint, state and markers (tracemark lsmod)
//	POST   /v1/modules                     InsmodRequest → ModuleInfo (201): load a module file (tracemark insmod)
//	DELETE /v1/modules/{name}[?force=1]    → ModuleInfo: unload a module (tracemark rmmod)
//	GET    /v1/taint                       TaintReport: the process taint, letter by letter (tracemark taint)
//
// Endpoints without a request type take no body. Session names have 1 to
// [MaxNameLen] letters, digits, '-', '_' and '.' ([CheckSessionName]).
//
// # Snapshot triggers
//
// An EnableRequest may carry a [TriggerRequest]: the named session then
// writes a snapshot of its buffers whenever a marker matching "on" fires,
// at most once per "every" (default 10s), each into a new CTF trace
// directory under "dir", an absolute path that the traced process writes
// (it runs as the same user as the client). A session has at most one
// trigger; SessionInfo.Trigger reports what it did.
//
// # Modules
//
// Loading modules at run time is the program's choice (agentmodules.WithHost).
// A process that did not opt in answers POST and DELETE /v1/modules with
// 503 "unavailable" ("process 1234 does not load modules: ..."); its
// GET /v1/modules says "loading": false with no modules, and GET /v1/taint
// still reports the process taint.
//
//	curl --unix-socket $S http://x/v1/modules -d '{"path":"/srv/plugins/classifier.wasm"}'
//	curl --unix-socket $S -X DELETE 'http://x/v1/modules/classifier?force=1'
//
// The process reads the module file itself, so the path must be absolute;
// it must name a regular file of at most the
// host's size limit (64 MiB by default). "force" loads a module that fails
// the ABI check (taint F); "policy" overrides the process's module policy
// for this module. Module names in paths are [a-z][a-z0-9_]*
// ([CheckModuleName]). Errors of the module layer map to codes by one
// rule: what is wrong with the file is "invalid_argument" (not a module,
// malformed or missing metadata, ABI mismatch without force, not signed by
// a trusted key when the host requires it, too large, died or overran its
// deadline while initializing, unreadable); what the state of the process
// prevents is "conflict" (a module of that name is loaded; rmmod without
// force while probes are connected to the module's markers) or "not_found"
// (no module of that name). Taint letters are the kernel's, in its order
// (see package module): P F R U D W O E L.
//
// Named sessions live in the process until deleted (or until the agent
// closes). A recording's session is ephemeral: it exists while its stream
// does, and is destroyed when the client goes away. To end a recording
// cleanly, a client calls the stop endpoint (on another connection) with
// the id of the stream's hello frame, and keeps reading: the agent stops
// the session, sends every event it recorded and then the end frame.
// Closing the stream instead loses what was not sent yet.
//
// # Errors
//
// An error response has a 4xx or 5xx status and a JSON [ErrorBody]:
//
//	{"error": {"code": "bad_filter", "message": "filter \"stat > 1\" on http:request_done ..."}}
//
// The code is stable and machine-readable (CodeBadRequest, ...); the
// message is for humans. Requests are bounded ([MaxRequestBytes],
// [MaxRules], [MaxPatternLen], [MaxFilterLen], buffer sizes from
// [MinBuffer] to [MaxBuffer], durations up to [MaxDuration], intervals from
// [MinInterval] to [MaxInterval]) and every field is validated before
// anything happens in the process (by the agent's request package;
// fuzzed). The agent also
// bounds how long a client may take to send a request and to accept a
// response, how many connections may be open and how many sessions exist.
//
// # Event streams
//
// A snapshot or a recording answers 200 with content type
// [ContentTypeFrames] and a body of frames. Each frame is an 8-byte header
// (uint8 type, three zero bytes, uint32 little-endian payload length, at
// most [MaxFramePayload]) and a payload:
//
//	'H' hello    JSON Hello: session, process, CTF clock and environment,
//	             markers matched, and the recording's id. Always first.
//	'C' classes  JSON Classes: event classes (CTF layout of each marker's
//	             records). Sent before the first packet using them.
//	'P' packet   PacketHeader (40 bytes: stream, events, seq, begin_ts,
//	             end_ts, discarded), then the records, byte for byte as the
//	             session recorded them: CTF 1.8 event records; with
//	             Hello.Context each carries those context fields after
//	             its header (the stream event context).
//	'Y' sync     no payload: the packets since the previous sync frame are
//	             one drain of all the session's buffers.
//	'S' stats    JSON Stats: the session's exact counters, periodically.
//	'G' go-trace bytes of Go's execution trace, if the recording asked for
//	             it (RecordRequest.GoTrace): concatenated, a go.trace file.
//	'E' end      JSON End: why the stream ends (stopped, duration,
//	             shutdown, snapshot, error) and the final counters. Last.
//
// A stream that ends without an end frame was cut: the process died or
// the connection broke. Packets are complete CTF packets but for their
// header: a client writes a CTF trace with ctf.Create, AddEventClasses for
// each classes frame and WritePacket(stream, PacketInfo{...}, records) for
// each packet frame, and gets the trace the process would have written
// itself; Babeltrace 2 reads it. Packets of a stream come in order, with
// consecutive sequence numbers and a cumulative count of discarded events.
//
// [Decoder] decodes the records of packet frames for clients that print
// or count events rather than store them.
package wire
