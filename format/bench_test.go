package format_test

import (
	"io"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format"
	"github.com/tracemark/tracemark/format/chromejson"
	"github.com/tracemark/tracemark/format/internal/tracetest"
	"github.com/tracemark/tracemark/format/jsonl"
	"github.com/tracemark/tracemark/format/perfetto"
	"github.com/tracemark/tracemark/format/text"
)

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// BenchmarkConvert measures Convert from a CTF trace on disk (in the page
// cache) of 100000 3-field events (two int64 and a 16-byte string) in two
// streams, to a writer that discards: reading, merging and formatting.
// One op is one whole conversion; events/s, in-MiB/s (CTF read) and
// out-MiB/s (output written) are reported.
func BenchmarkConvert(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	size := tracetest.WriteLarge(b, dir, n, 2)
	for _, to := range format.Formats() {
		b.Run(to, func(b *testing.B) {
			var out countWriter
			for b.Loop() {
				if err := format.Convert(dir, to, &out); err != nil {
					b.Fatal(err)
				}
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(n*b.N)/s, "events/s")
			b.ReportMetric(float64(size*int64(b.N))/s/(1<<20), "in-MiB/s")
			b.ReportMetric(float64(out.n)/s/(1<<20), "out-MiB/s")
			b.ReportMetric(float64(out.n)/float64(n*b.N), "out-B/event")
		})
	}
}

// BenchmarkWriteEvent measures formatting alone: one op is one 3-field
// event given to a format's Writer.
func BenchmarkWriteEvent(b *testing.B) {
	ev := &ctf.Event{Class: &tracetest.BenchClass, Time: 1700000000_000000000, Fields: []ctf.Value{
		ctf.IntValue(123456), ctf.IntValue(-123456), ctf.StringValue("0123456789abcdef")}}
	writers := []struct {
		name string
		new  func(io.Writer) interface{ WriteEvent(*ctf.Event) error }
	}{
		{format.ChromeJSON, func(w io.Writer) interface{ WriteEvent(*ctf.Event) error } {
			return chromejson.NewWriter(w, tracetest.Info(), []ctf.EventClass{tracetest.BenchClass})
		}},
		{format.Perfetto, func(w io.Writer) interface{ WriteEvent(*ctf.Event) error } {
			pw, err := perfetto.NewWriter(w, tracetest.Info(), []ctf.EventClass{tracetest.BenchClass})
			if err != nil {
				panic(err)
			}
			return pw
		}},
		{format.Text, func(w io.Writer) interface{ WriteEvent(*ctf.Event) error } { return text.NewWriter(w) }},
		{format.JSONL, func(w io.Writer) interface{ WriteEvent(*ctf.Event) error } { return jsonl.NewWriter(w) }},
	}
	for _, tt := range writers {
		b.Run(tt.name, func(b *testing.B) {
			var out countWriter
			w := tt.new(&out)
			b.ReportAllocs()
			for b.Loop() {
				ev.Time += 1234
				if err := w.WriteEvent(ev); err != nil {
					b.Fatal(err)
				}
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/s, "events/s")
			b.ReportMetric(float64(out.n)/s/(1<<20), "out-MiB/s")
		})
	}
}
