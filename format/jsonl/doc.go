// Package jsonl writes the events of a CTF trace as JSON Lines
// (https://jsonlines.org): one JSON object per line, for scripts and jq.
//
// # Format
//
// The field names are stable; later versions may add fields, never rename
// or remove them. An event is written as
//
//	{"ts_ns":1700000000000000170,"time":"2023-11-14T22:13:20.000000170Z","rel_ns":70,"stream":0,"cpu":0,"event":"http:request","provider":"http","fields":{"method":"GET","path":"/ap","body":"0001ff","status":200},"truncated":["path"]}
//
// with, in this order:
//
//   - ts_ns: the time in nanoseconds since the Unix epoch (for tracemark
//     traces, whose clock is offset to wall-clock time);
//   - time: the same instant in RFC 3339, UTC, with exactly nine
//     fractional digits (so that it sorts as text);
//   - rel_ns: nanoseconds since the first line, small enough to stay
//     exact in tools that compute with float64 (see below);
//   - stream: the data stream number; cpu: the packet's cpu_id (for
//     tracemark recordings, the buffer shard);
//   - event: the event (marker) name; provider: the part of it before the
//     first ':', or the whole name if it has none;
//   - fields: an object with one member per field, in declaration order;
//   - truncated: present only if the recorder truncated some fields: their
//     names, in declaration order.
//
// Where the trace reports lost data, a notice takes the place of an
// event. It has no "event" member, so `select(.event)` skips notices and
// `select(.lost_events)` finds them:
//
//	{"ts_ns":1700000000000000160,"time":"2023-11-14T22:13:20.000000160Z","rel_ns":60,"stream":1,"cpu":1,"lost_events":12,"lost_packets":1,"end_ts_ns":1700000000000000250,"end_time":"2023-11-14T22:13:20.000000250Z"}
//
// lost_events counts the events the recorder discarded (the growth of the
// CTF events_discarded counter), lost_packets the packets missing from the
// stream (a gap in packet_seq_num); both are always present. The loss
// happened between ts_ns and end_ts_ns.
//
// # Values
//
//   - Integers stay integers whatever they mean: a duration field
//     (ctf.Duration) is its count of nanoseconds, a bool field
//     (ctf.Boolean) 0 or 1; the trace's metadata says which fields those
//     are (types duration_ns_t and bool_t).
//   - Integers of every width are JSON numbers written exactly, from
//     -9223372036854775808 to 18446744073709551615. JSON puts no limit on
//     numbers; Go's encoding/json (into int64, uint64 or json.Number),
//     Python's json module and jq 1.7 or later (as long as no arithmetic
//     is done on them) keep them exact. Tools that hold every number as a
//     float64 (JavaScript's JSON.parse, jq 1.6, jq arithmetic) round
//     integers beyond 2^53; ts_ns is beyond it, which is why time and
//     rel_ns exist. Integers are not written as strings so that every
//     field has one JSON type.
//   - Floats are JSON numbers in the shortest form that reads back as the
//     same value of the field's width, with ".0" added to integral values
//     so that they stay floats ("2.0"). JSON has no NaN or infinities:
//     they are the strings "NaN", "Infinity" and "-Infinity", as in the
//     protobuf JSON mapping (Go's strconv.ParseFloat and Python's float()
//     accept them).
//   - Strings are JSON strings. Bytes that are not valid UTF-8 (JSON text
//     must be UTF-8) are replaced by U+FFFD; control characters, '"' and
//     '\' are escaped, as are U+2028 and U+2029.
//   - Byte sequences are JSON strings of lower-case hexadecimal, two
//     digits a byte ("" when empty); hex rather than base64 because it
//     reads like the text and Perfetto outputs (decode with
//     bytes.fromhex, xxd -r -p or hex.DecodeString).
package jsonl
