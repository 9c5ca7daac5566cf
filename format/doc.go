// Package format converts tracemark's CTF traces into the formats people
// and tools read, and summarizes them. It is what `tracemark convert` and
// `tracemark summary` run.
//
// # Formats
//
// [Convert] reads a trace directory written by package ctf and writes one
// of:
//
//   - [Perfetto] ("perfetto"): Perfetto's protobuf trace format, which
//     the Perfetto UI (https://ui.perfetto.dev, "Open trace file") and
//     trace_processor open: one track per provider, events with a duration
//     field as slices and the others as instants, fields as typed
//     arguments, chosen fields as counter tracks, lost data on per-stream
//     tracks. See package [github.com/tracemark/tracemark/format/perfetto].
//   - [ChromeJSON] ("chrome-json"): a Chrome Trace Event Format JSON
//     document that chrome://tracing and the Perfetto UI open: one track
//     per provider, events as instants. See package
//     [github.com/tracemark/tracemark/format/chromejson].
//   - [Text] ("text"): one line per event, like Babeltrace's pretty output
//     and ftrace. See package [github.com/tracemark/tracemark/format/text].
//   - [JSONL] ("jsonl"): one JSON object per line, for scripts and jq. See
//     package [github.com/tracemark/tracemark/format/jsonl].
//
// Each subpackage documents its exact, stable format, and exports a Writer
// for programs that read events themselves (for example to convert while
// recording).
//
// [Summarize] counts events per marker and lost events and packets per
// stream, finds the time span and the traced program; [Summary.WriteText]
// prints it as aligned text and encoding/json encodes it for scripts.
//
// # Conventions shared by the formats
//
//   - Events come in timestamp order, merged across streams, as
//     [ctf.Reader] returns them.
//   - Times are wall-clock: tracemark's trace clock is offset to the Unix
//     epoch. Where a format prints a calendar time, it is RFC 3339 with
//     exactly nine fractional digits, in UTC (the text format can use
//     another time zone).
//   - The provider of an event is the part of its name before the first
//     ':' ("http" for "http:request"), or the whole name if it has none.
//   - Byte sequences are lower-case hexadecimal in every format.
//   - Where the trace reports lost data (the recorder discarded events,
//     or packets are missing), every format shows a notice with the
//     counts, at the time the loss began: nothing is lost silently.
//   - Fields the recorder truncated are marked.
//
// # Memory and errors
//
// Conversion and summaries stream: one event is decoded and written at a
// time, and each format keeps per-class state only, so a trace of any
// size converts in a few hundred KiB plus output buffering (tested with a
// million events); the Perfetto writer also keeps up to 65536 interned
// string values of up to 64 bytes, and a few bytes per track. Corrupt or truncated input never panics: the error
// from package ctf names the file and the byte offset, and everything
// before it is converted.
package format
