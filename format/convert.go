package format

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/chromejson"
	"github.com/tracemark/tracemark/format/jsonl"
	"github.com/tracemark/tracemark/format/perfetto"
	"github.com/tracemark/tracemark/format/text"
)

// Output format names, as accepted by Convert.
const (
	// Perfetto is Perfetto's native protobuf trace format, which the
	// Perfetto UI and trace_processor open (package perfetto).
	Perfetto = "perfetto"
	// ChromeJSON is the Chrome Trace Event Format JSON that the Perfetto
	// UI and chrome://tracing open (package chromejson).
	ChromeJSON = "chrome-json"
	// Text is one line of text per event (package text).
	Text = "text"
	// JSONL is one JSON object per line (package jsonl).
	JSONL = "jsonl"
)

// Formats returns the names of the output formats, for help texts and
// shell completion.
func Formats() []string { return []string{Perfetto, ChromeJSON, Text, JSONL} }

// ErrUnknownFormat is returned by Convert for a format name it does not
// know.
var ErrUnknownFormat = errors.New("unknown output format")

// Option configures Convert. Options are made by the With functions of
// this package; without options every format has its defaults.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// options is a conversion's configuration: the options of the format
// writers.
type options struct {
	Text     []text.Option
	Perfetto []perfetto.Option
	Warn     func(string)
}

func (o options) warn(ws []string) {
	if o.Warn != nil {
		for _, w := range ws {
			o.Warn(w)
		}
	}
}

func newOptions(with []Option) options {
	var o options
	for _, w := range with {
		if w != nil {
			w.apply(&o)
		}
	}
	return o
}

// WithText configures the text format (see package text); the other
// formats ignore it. By default text has none of its options.
func WithText(opts ...text.Option) Option {
	return optionFunc(func(o *options) { o.Text = append(o.Text, opts...) })
}

// WithPerfetto configures the Perfetto format (see package perfetto); the
// other formats ignore it. By default Perfetto has none of its options;
// a field that they name and the trace does not have is an error of
// Convert.
func WithPerfetto(opts ...perfetto.Option) Option {
	return optionFunc(func(o *options) { o.Perfetto = append(o.Perfetto, opts...) })
}

// WithWarnings has Convert call warn with each problem the reader worked
// around rather than refusing the trace (see ctf.Reader.Warnings), before
// it converts; each names the metadata file and line. By default they
// are not reported.
func WithWarnings(warn func(msg string)) Option {
	return optionFunc(func(o *options) { o.Warn = warn })
}

// encoder is what the three format writers have in common.
type encoder interface {
	WriteEvent(*ctf.Event) error
	Close() error
}

// Convert reads the CTF trace in directory inDir and writes it to w in
// format to (Perfetto, ChromeJSON, Text or JSONL), with the options of
// the formats (WithText, WithPerfetto).
//
// Conversion streams: events are read and written one at a time, so
// memory use does not grow with the size of the trace. If the trace is
// corrupt or truncated, Convert writes every event before the problem,
// completes the output (the Chrome JSON document is closed, so that it
// still opens) and returns the reader's error, a *ctf.CorruptError naming
// the file and byte offset. Write errors are returned wrapped with the
// format name.
//
// A directory holding traces below it rather than a trace (a host-wide
// recording: one trace per process) is converted to one timeline, its
// events merged in time order, each naming its process (in Perfetto, a
// process of its own).
func Convert(inDir, to string, w io.Writer, with ...Option) error {
	opts := newOptions(with)
	to = strings.ToLower(to)
	switch to {
	case Perfetto, ChromeJSON, Text, JSONL:
	default:
		return fmt.Errorf("%w %q (known formats: %s)", ErrUnknownFormat, to, strings.Join(Formats(), ", "))
	}
	if isSet(inDir) {
		return convertSet(inDir, to, w, opts)
	}
	r, err := ctf.Open(inDir)
	if err != nil {
		return err
	}
	defer r.Close()
	opts.warn(readerWarnings(inDir, r))
	var enc encoder
	switch to {
	case Perfetto:
		if enc, err = perfetto.NewWriter(w, r.Info(), r.Classes(), opts.Perfetto...); err != nil {
			return err
		}
	case ChromeJSON:
		enc = chromejson.NewWriter(w, r.Info(), r.Classes())
	case Text:
		enc = text.NewWriter(w, opts.Text...)
	case JSONL:
		enc = jsonl.NewWriter(w)
	}
	var readErr error
	for ev, err := range r.Events() {
		if err != nil {
			readErr = err
			break
		}
		if err := enc.WriteEvent(ev); err != nil {
			return fmt.Errorf("writing %s output: %w", to, err)
		}
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("writing %s output: %w", to, err)
	}
	return readErr
}
