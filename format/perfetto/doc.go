// Package perfetto writes the events of a CTF trace in Perfetto's native
// protobuf trace format, which the Perfetto UI and trace_processor open.
//
// # Opening the output
//
// In the Perfetto UI (https://ui.perfetto.dev): "Open trace file", or drag
// the file onto the page; it is processed in the browser, not uploaded.
// For SQL, trace_processor_shell (or the UI's query page):
//
//	trace_processor_shell trace.pftrace
//	> select ts, dur, s.name, key, display_value from slice s join args using(arg_set_id);
//
// chrome://tracing does not read this format; package
// [github.com/tracemark/tracemark/format/chromejson] writes one it reads.
//
// # Format
//
// The output is a Trace message: a sequence of TracePacket messages, each
// as field 1 (protos/perfetto/trace/trace.proto and trace_packet.proto in
// github.com/google/perfetto). The messages are encoded here with
// google.golang.org/protobuf/encoding/protowire, from the field numbers of
// those definitions, which no Go module ships.
//
//   - All packets are on one sequence (trusted_packet_sequence_id 1). The
//     first clears its incremental state (SEQ_INCREMENTAL_STATE_CLEARED)
//     and every event packet needs it (SEQ_NEEDS_INCREMENTAL_STATE): it
//     is the first packet's packet defaults, which name the clock of the
//     timestamps (below), and the interned data. Event names, categories
//     (providers) and field names are interned
//     (InternedData event_names, event_categories, debug_annotation_names),
//     and so are string values of up to 64 bytes
//     (debug_annotation_string_values), up to 65536 of them; longer and
//     later strings are written inline. An interned entry goes in the
//     packet of its first use.
//   - Tracks are TrackDescriptor packets, each written before its first
//     use. The traced program is one process track: pid is the trace's
//     vpid environment value (1 if absent), named after procname (else
//     trace_name, else "trace"), with the labels "host=..." and
//     "trace=...". Under it, each provider (the part of the event name
//     before the first ':', or the whole name) has a track named after it,
//     declared upfront for the trace's classes in the order of their
//     names. Counter tracks follow, then a "tracemark" track whose
//     children, one per data stream and named "stream 3 (P3)" (stream
//     number and the cpu_id, the P, of its packets), hold the lost data.
//   - Every event is a TrackEvent on its provider's track, named by the
//     full event name, with the provider as category and its fields as
//     debug annotations in declaration order. An event with a duration
//     field (see [WithDurations]; by default the field its marker's span
//     declaration names) of value d >= 0 is a slice that ends at the
//     event and starts d earlier (TYPE_SLICE_BEGIN with the fields, then
//     TYPE_SLICE_END). An event of a marker declared to end the spans of
//     a start marker (ctf.EventClass.Span, marker.SpanEnd) is a slice from
//     the latest unpaired start event with the same key values to the
//     event, with the end event's fields; an end without a start is an
//     instant, and start events are instants too. Any other event is an
//     instant (TYPE_INSTANT).
//     Slices on one track must nest, which durations do not say, so slices
//     that overlap go on further tracks of the same name and parent, which
//     the UI shows merged as one: a slice goes on the first such track
//     whose slices all ended before it starts. Instants stay on the first.
//   - Times are nanoseconds of wall-clock time (the trace clock offset
//     to the Unix epoch), on BOOTTIME, Perfetto's default trace clock;
//     times before the epoch are written as 0. They are written on an
//     incremental clock of the sequence: the first packet's
//     TracePacketDefaults set timestamp_clock_id 64 (a sequence-scoped
//     clock) and its ClockSnapshot says that clock 64, incremental, is
//     at 0 when BOOTTIME is, so each packet's timestamp field is the
//     difference from the timestamp of the sequence's previous packet
//     that has one. A packet earlier than that one (a slice's begin, an
//     event after the end of a loss's interval) has a negative
//     difference, written as its two's complement in the uint64 field,
//     as trace_processor reads it. Track descriptors have no timestamp.
//   - Field values keep their types: signed integers as int_value,
//     unsigned ones as uint_value (trace_processor keeps them as int64, so
//     values above 2^63-1 read back negative in SQL), floats as
//     double_value (SQL shows NaN as NULL), strings as string_value or
//     string_value_iid with invalid UTF-8 replaced by U+FFFD (one per
//     byte), byte sequences as strings of lower-case hexadecimal. Fields
//     the recorder truncated are listed, comma-separated, in the extra
//     annotation "_truncated" (field names cannot begin with '_').
//   - A field named by [WithCounters] is drawn on a counter track
//     named "event field" ("http:request_done latency"), with unit
//     nanoseconds if it is a duration field: TYPE_COUNTER events with
//     counter_value (integers up to 2^63-1) or double_counter_value.
//   - Where the trace reports lost data, a slice on the stream's track
//     covers the interval in which it was lost, named after the loss
//     ("lost 12 events and 1 packet", "lost 3 events"), in category
//     "tracemark", with the stream, cpu, lost_events and lost_packets as
//     annotations.
//
// Start and done markers that do not declare their pairing stay two
// instants; a done marker with a duration field is a slice already.
//
// # Size and speed
//
// A demo-like trace (requests with five fields, cache and storage events)
// takes about 49 bytes an event, a third of the Chrome JSON; see the
// benchmarks for the conversion speed.
//
// # Several processes
//
// [MultiWriter] writes the traces of several processes on one clock (a
// host-wide recording, one CTF trace per process) as one Perfetto trace.
// Each process is written as a Writer writes one, with the pid and name
// given (the host pid, as the process table must not merge two processes
// of other PID namespaces with the same vpid), on a sequence of its own
// (trusted_packet_sequence_id 1, 2, ... in the order given, each with its
// own interned names and its own incremental clock, which only the order
// of its own packets in the file matters to) and with track uuids of its
// own (process i from
// i*2^32+1). trace_processor sorts the packets by time, so the processes
// need not be interleaved in time order.
package perfetto
