// Package chromejson writes the events of a CTF trace as a JSON document
// in the Chrome Trace Event Format, which the Perfetto UI and
// chrome://tracing open. It is tracemark convert's chrome-json format;
// package [github.com/tracemark/tracemark/format/perfetto] writes
// Perfetto's native protobuf format, smaller and richer (slices, counter
// tracks, typed arguments).
//
// # Opening the output
//
// In the Perfetto UI (https://ui.perfetto.dev, or a local copy served by
// trace_processor --httpd): "Open trace file" in the left sidebar, or drag
// the file onto the page; the file is processed in the browser and not
// uploaded. In Chrome or Chromium: chrome://tracing, then "Load". The
// trace_processor shell opens it too, for SQL queries:
//
//	trace_processor_shell trace.json
//	> select ts, s.name, key, display_value from slice s join args using(arg_set_id);
//
// # Why JSON
//
// Perfetto reads its native protobuf format (package perfetto) and, as a
// legacy format, this JSON one. JSON opens in chrome://tracing too, is
// readable, and is easily checked (the tests parse it with encoding/json
// and check it against what the Perfetto importer accepts). Its costs:
// files are bigger than protobuf (about 150 bytes an event, against about
// 55), the UI loads them into memory, and timestamps are microseconds in
// a JSON number.
//
// # Format
//
// The format followed is the JSON Object Format of the Trace Event Format
// document (https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU),
// as Perfetto's importer implements it
// (https://perfetto.dev/docs/getting-started/other-formats and, in
// github.com/google/perfetto, src/trace_processor/importers/json/
// json_trace_tokenizer.cc and json_trace_parser_impl.cc):
//
//	{"traceEvents":[
//	{"name":"process_name","ph":"M","pid":4242,"args":{"name":"app"}},
//	{"name":"process_labels","ph":"M","pid":4242,"args":{"labels":"host=testhost, trace=unit"}},
//	...
//	{"name":"thread_name","ph":"M","pid":4242,"tid":1,"args":{"name":"tracemark"}},
//	{"name":"lost 12 events and 1 packet on stream 1","cat":"tracemark","ph":"i","s":"t","ts":0.160,"pid":4242,"tid":1,"args":{"stream":1,"cpu":1,"lost_events":12,"lost_packets":1,"until":"2023-11-14T22:13:20.000000250Z"}},
//	{"name":"thread_name","ph":"M","pid":4242,"tid":3,"args":{"name":"http"}},
//	{"name":"http:request","cat":"http","ph":"i","s":"t","ts":0.170,"pid":4242,"tid":3,"args":{"method":"GET","path":"/ap","body":"0001ff","status":200,"_truncated":["path"]}},
//	...
//	],
//	"otherData":{"converter":"tracemark","trace_start":"2023-11-14T22:13:20.000000000Z","trace_start_ns":"1700000000000000000","clock":"monotonic","env_hostname":"testhost",...,"events":12,"lost_events":15}}
//
// One trace event a line, in trace order:
//
//   - The traced program is one process: pid is the trace's vpid
//     environment value (1 if absent) and the "process_name" metadata
//     event names it after procname (else trace_name, else "trace");
//     "process_labels" adds the host and trace name (shown by
//     chrome://tracing).
//   - Each provider (the part of the event name before the first ':', or
//     the whole name if it has none) is one track: a thread of that
//     process, named by a "thread_name" metadata event written before its
//     first event. Thread ids are 2, 3, ... in the order of the provider
//     names of the trace's classes; tid 1 is the "tracemark" track of
//     notices (shared with the events of a provider named "tracemark", if
//     any). Thread ids are never 0, which the importer would replace with
//     the pid.
//   - Every event is an instant event ("ph":"i") of thread scope
//     ("s":"t"), which Perfetto draws as a zero-duration slice on the
//     provider's track, named by the full event name, with the provider as
//     category ("cat"), except the events of markers that declare spans
//     (ctf.EventClass.Span: marker.SpanDuration, marker.SpanEnd): an event
//     whose marker names a duration field is a complete event ("ph":"X")
//     that ends at the event and lasted that long ("dur", in microseconds
//     like "ts"), and an event that ends the span of a start event (the
//     latest unpaired one with the same key values) is a complete event
//     from the start to the event; an end without a start stays an
//     instant, and start events are instants. Slices on one thread must
//     nest, which a span's time does not say, so a slice that overlaps
//     one of its provider's goes on a further thread with the provider's
//     name (thread ids after the providers').
//   - "ts" is in microseconds, as the format requires, written with exactly
//     three decimals so that nanoseconds survive: 0.170 is 170 ns. It
//     counts from trace_start, the whole second (UTC) at or before the
//     first event, stated in otherData. Timestamps are relative because
//     the importer reads "ts" as a float64: absolute Unix times in
//     microseconds (about 1.7e15) would lose the nanoseconds, while
//     relative ones read back exactly for traces up to about a month long
//     (the tests check it with the importer's arithmetic over three weeks);
//     beyond, a timestamp may be off by a nanosecond.
//   - Field values are the event's "args", one per field in declaration
//     order: integers as JSON numbers (the importer keeps them as int64),
//     except unsigned values above 2^63-1, written as strings of decimal
//     digits to stay exact; finite floats as JSON numbers (with ".0" on
//     integral values, so that they stay floats) and NaN and the
//     infinities as the strings "NaN", "Infinity" and "-Infinity"; strings
//     as JSON strings (invalid UTF-8 replaced by U+FFFD); byte sequences
//     as strings of lower-case hexadecimal.
//   - Truncated fields are listed in the extra argument "_truncated"
//     (field names cannot begin with '_', so it cannot collide).
//   - Where the trace reports lost data, an instant event on the
//     "tracemark" track is named after the loss ("lost 12 events and 1
//     packet on stream 1", "lost 3 events on stream 5") so that it is
//     visible on the timeline, at the start of the interval in which the
//     loss happened, with the counts, the stream, its cpu_id and the end
//     of the interval ("until", wall-clock time) as arguments.
//
// "displayTimeUnit" is not written: some Perfetto versions took "ns" there
// to mean that "ts" is in nanoseconds, against the format document.
package chromejson
