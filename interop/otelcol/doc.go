// Package otelcol tests tracemark's OTLP exporter against the
// OpenTelemetry Collector's own OTLP receiver, run in-process with a sink
// consumer, and the tracemark CLI itself (built from the main module) in
// a host-wide recording with --otlp, the CLI's demo service as the traced
// programs. It is a module of its own so that the main module does not
// take the collector's dependencies.
package otelcol
