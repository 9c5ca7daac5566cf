// Package otelcol tests tracemark's OTLP exporter against the
// OpenTelemetry Collector's own OTLP receiver, run in-process with a sink
// consumer. It is a module of its own so that the main module does not
// take the collector's dependencies.
package otelcol
