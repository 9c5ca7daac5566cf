package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format"
	"github.com/tracemark/tracemark/format/perfetto"
	"github.com/tracemark/tracemark/format/text"
)

func convertCmd(a *app) *cobra.Command {
	var (
		to       string
		out      string
		relative bool
		local    bool
		counters []string
		durs     []string
		otlpURL  string
	)
	cmd := &cobra.Command{
		Use:     "convert TRACE_DIR --to perfetto|chrome-json|text|jsonl [-o OUT]",
		GroupID: "files",
		Short:   "Convert a CTF trace to Perfetto, text or JSON Lines",
		Long: `Convert a CTF trace directory written by tracemark into another format:

  perfetto  Perfetto's protobuf trace, for the Perfetto UI (ui.perfetto.dev,
            "Open trace file") and trace_processor: one track per provider,
            spans the markers declare as slices (a duration field, or from a
            start event to its done event), events with a duration field
            (latency, duration, or --slice) as slices ending at the event,
            the rest as instants, fields as typed arguments, --counter fields
            as counter tracks, lost events on per-stream tracks. A host-wide
            directory (a trace per process) is one trace with a process
            track per process.
  chrome-json
            Chrome Trace Event JSON, for chrome://tracing and the Perfetto UI:
            one track per provider, declared spans as slices, the rest as
            instants.
  text      one line per event, like Babeltrace's pretty output and ftrace:
            time, delta, stream, provider:event, field=value pairs.
  jsonl     one JSON object per event with stable field names, for jq.

The output goes to standard output unless -o names a file. A corrupt or
truncated trace is converted up to the damage, then the error names the
file and byte offset.

With --otlp URL instead of --to, the events go to an OpenTelemetry
collector as OTLP log records, and as spans for the markers that declare
them (the trace keeps the declarations and the field kinds: bools, trace
and span ids).`,
		Example: example(
			"tracemark convert ./trace --to perfetto -o trace.pftrace",
			"tracemark convert ./trace --to perfetto --counter http:request_done:latency -o trace.pftrace",
			"tracemark convert ./trace --to text | less",
			"tracemark convert ./trace --to jsonl | jq 'select(.fields.status >= 500)'",
			"tracemark convert ./trace --otlp http://localhost:4318"),
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if otlpURL != "" && to == "" {
				return exportTrace(argv[0], otlpURL, a)
			}
			if !validFormat(to) {
				return usagef("--to %q: want one of %s", to, strings.Join(format.Formats(), ", "))
			}
			pf, err := perfettoFlags(counters, durs, cmd.Flags().Changed("slice"))
			if err != nil {
				return usagef("%v", err)
			}
			var tf []text.Option
			if relative {
				tf = append(tf, text.WithRelative())
			}
			if local {
				tf = append(tf, text.WithLocation(time.Local))
			}
			warn := format.WithWarnings(func(msg string) { warnf(a, "%s", msg) })
			return convertTo(argv[0], to, out, a.stdout, format.WithText(tf...), format.WithPerfetto(pf...), warn)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "output format: perfetto, chrome-json, text or jsonl (required)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	cmd.Flags().BoolVar(&relative, "relative", false, "text: show seconds since the trace start instead of wall-clock time")
	cmd.Flags().BoolVar(&local, "local", false, "text: show wall-clock time in the local time zone instead of UTC")
	cmd.Flags().StringArrayVar(&counters, "counter", nil, "perfetto: draw numeric field EVENT:FIELD as a counter track (repeatable)")
	cmd.Flags().StringArrayVar(&durs, "slice", nil, "perfetto: EVENT:FIELD is a duration in ns ending at the event, drawn as a slice (repeatable; replaces the latency/duration default; --slice '' for none)")
	cmd.Flags().StringVar(&otlpURL, "otlp", "", "instead of --to: send the events to an OpenTelemetry collector at this OTLP/HTTP base URL")
	return cmd
}

// warnf prints a warning: a problem worked around, not an error.
func warnf(a *app, format string, args ...any) {
	fmt.Fprintf(a.stderr, "tracemark: warning: "+format+"\n", args...)
}

// warnTrace prints what the reader of the trace in dir worked around.
func warnTrace(a *app, dir string, r *ctf.Reader) {
	for _, w := range r.Warnings() {
		warnf(a, "%s: %s", filepath.Join(dir, "metadata"), w)
	}
}

// perfettoFlags returns the Perfetto options of --counter and --slice.
func perfettoFlags(counters, durs []string, sliceSet bool) ([]perfetto.Option, error) {
	var cs, ds []perfetto.FieldRef
	for _, c := range counters {
		r, err := perfetto.ParseFieldRef(c)
		if err != nil {
			return nil, fmt.Errorf("--counter: %w", err)
		}
		cs = append(cs, r)
	}
	for _, d := range durs {
		if d == "" {
			continue
		}
		r, err := perfetto.ParseFieldRef(d)
		if err != nil {
			return nil, fmt.Errorf("--slice: %w", err)
		}
		ds = append(ds, r)
	}
	opts := []perfetto.Option{perfetto.WithCounters(cs...)}
	if sliceSet { // replaces the default, even with no field (--slice '')
		opts = append(opts, perfetto.WithDurations(ds...))
	}
	return opts, nil
}

func validFormat(name string) bool {
	for _, f := range format.Formats() {
		if strings.EqualFold(f, name) {
			return true
		}
	}
	return false
}

// convertTo converts a trace to out, or to stdout when out is "". A failed
// conversion into a file keeps what was written: it is valid up to the
// damage, which the error locates.
func convertTo(in, to, out string, stdout io.Writer, opts ...format.Option) error {
	if _, err := os.Stat(in); err != nil {
		return fmt.Errorf("reading trace: %w", err)
	}
	var w io.Writer = stdout
	var f *os.File
	if out != "" {
		var err error
		if f, err = os.Create(out); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	// Every format buffers its output (64 KiB at a time): another buffer
	// would only copy it once more.
	err := format.Convert(in, to, w, opts...)
	if f != nil {
		if cerr := f.Close(); err == nil && !errors.Is(cerr, os.ErrClosed) {
			err = cerr
		}
	}
	return err
}

// exportPerfetto is the demo's Perfetto step.
func exportPerfetto(ctfDir, file string) error {
	return convertTo(ctfDir, "perfetto", file, io.Discard)
}
