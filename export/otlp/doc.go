// Package otlp exports tracemark events to an OpenTelemetry collector
// (or any OTLP back end) over OTLP/HTTP with protobuf encoding, optionally
// gzip-compressed. It is what `tracemark record --otlp` and `tracemark
// stream --otlp` run, and programs may use it to export what they read
// themselves.
//
// # Mapping
//
// An event becomes an OTLP LogRecord:
//
//   - event_name is the marker name ("http:request_done");
//   - time_unix_nano is the event's timestamp, observed_time_unix_nano
//     the time the exporter received it;
//   - each field is an attribute named after the field: signed and
//     unsigned integers are int values (an unsigned value above 2^63-1,
//     which OTLP cannot hold, is sent as its decimal string), floats
//     double values, bools bool values, strings string values, byte
//     sequences bytes values, and durations int values in nanoseconds;
//   - fields of kind trace_id (16 bytes) and span_id (8 bytes), which
//     marker.TraceID and marker.SpanID declare, are not attributes: they
//     fill the record's trace_id and span_id, so that back ends link the
//     event to the program's own traces (a span made from the event gets
//     the trace id, and the span id as its parent);
//   - fields the recorder truncated are named in the string array
//     attribute tracemark.truncated;
//   - the instrumentation scope is the module the marker belongs to,
//     with its version: the Go module of its package (the main module
//     for package main), or the WebAssembly plug-in that defines it.
//     Traces keep it, so tracemark convert --otlp sends a trace's
//     events under the same scope (under "tracemark" for traces
//     written before they kept it).
//
// Spans (Exporter.Span) are of kind internal, with attributes. Metrics
// (Exporter.ExportMetrics) are cumulative sums, explicit-bound
// histograms and exponential histograms.
//
// The resource describes the traced process (see ProcessResource):
// service.name, host.name, process.pid, process.executable.name,
// telemetry.sdk.name "tracemark" and telemetry.sdk.language "go", with
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES applied as the
// OpenTelemetry SDKs do. WithEnv reads OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT,
// OTEL_EXPORTER_OTLP_COMPRESSION and OTEL_EXPORTER_OTLP_PROTOCOL, and
// their per-signal forms (OTEL_EXPORTER_OTLP_LOGS_HEADERS...), as the
// specification says, and the batch log record processor's
// OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, OTEL_BLRP_MAX_QUEUE_SIZE and
// OTEL_BLRP_SCHEDULE_DELAY for the batches and queue of every signal;
// Exporter.Warnings lists the settings it ignored.
//
// New takes the collector's endpoint and options, each of which changes
// one default and documents the values it accepts; New fails with an
// error wrapping ErrConfig and naming the option given a value it does
// not.
//
// # Delivery
//
// Log and Span encode the event at once into the current batch and
// return without waiting for the network (LogAt takes the observed time
// from a caller that reads the clock once for many events). A batch is
// sent when it holds a number of events or bytes, or when its first event
// waited some time (WithBatch). Memory is bounded: at most a number of
// events (WithQueueSize) are held (encoded) in memory; an event that finds
// the queue full is dropped and counted (unless WithBlock).
//
// A program that decodes events on several goroutines encodes them there:
// each fills its own LogBuilder (NewLogBuilder) without the exporter's
// lock, and Commit gives a LogBuilder's records to the exporter taking the
// lock once, with the same limits and counts as Log. A caller that reads
// the values out of its own format gives them field by field (Begin, Int,
// Str, ..., End) rather than build a []ctf.Value for Add, and one holding
// CTF records gives a record's bytes (AddCTF): the records are the same.
// LogBuilder encodes only log records; SpanOf does the span side of an
// event (a span start remembered, a span exported), in the order it is
// called, so the caller calls it in the order the events happened.
//
// Full batches are compressed (gzip at its fastest level) and sent by
// DefaultSenders goroutines (eight uncompressed), or WithSenders:
// while one waits for the collector, the next batch goes out. Batches
// therefore may reach the collector in another order than they were
// filled, as OTLP allows; within a batch the events keep the order in
// which they were given, and their timestamps say when they happened.
//
// A batch that fails with a network error or HTTP 429, 502, 503 or 504
// is sent again after a backoff (100 ms doubling up to 5 s by default)
// or after the server's Retry-After; other answers reject the batch for
// good (ErrRejected, with the collector's message in HTTPError). While
// the collector is unreachable nothing is dropped until the queue is
// full. Delivery is at least once: a batch whose answer was lost is sent
// again.
//
// Every event ends up counted in exactly one of Stats.Exported, Dropped,
// Rejected and Failed (not exported when Close gave up: unsent, or not
// answered in time, which the collector may have received). Once the
// collector accepts exports again after drops, the exporter sends the
// counts as the metric tracemark.exporter.dropped (a cumulative sum with
// attribute reason = queue_full or rejected).
//
// The package encodes protobuf itself, with no dependency: see the
// design record for why.
package otlp
