package perfetto_test

import (
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format"
	"github.com/tracemark/tracemark/format/internal/tracetest"
	"github.com/tracemark/tracemark/format/perfetto"
)

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkConvert converts a demo-like trace (100 000 requests, about
// 370 000 events) from CTF, as tracemark convert does, to Perfetto and,
// for comparison, to Chrome JSON; it reports events/s and the output
// size per event, and the CPU time per conversion, which on the shared
// machine is steadier than the wall time. "read-only" reads the trace
// without converting.
func BenchmarkConvert(b *testing.B) {
	dir := b.TempDir()
	n := tracetest.WriteDemo(b, dir, 100_000)
	b.Run("read-only", func(b *testing.B) { // the floor: reading the CTF trace
		cpu := cpuTime()
		for b.Loop() {
			r, err := ctf.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			for _, err := range r.Events() {
				if err != nil {
					b.Fatal(err)
				}
			}
			r.Close()
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	for _, to := range []string{format.Perfetto, format.ChromeJSON} {
		b.Run(to, func(b *testing.B) {
			var out countWriter
			cpu := cpuTime()
			for b.Loop() {
				if err := format.Convert(dir, to, &out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(n*b.N)/s, "events/s")
			b.ReportMetric(float64(out.n)/float64(n*b.N), "out-B/event")
		})
	}
}

// BenchmarkWriteEvent measures the writer alone on the demo's commonest
// event, http:request_done (a slice with five fields), with a counter.
func BenchmarkWriteEvent(b *testing.B) {
	var out countWriter
	w, err := perfetto.NewWriter(&out, tracetest.Info(), tracetest.DemoClasses, demoOpts.options()...)
	if err != nil {
		b.Fatal(err)
	}
	ev := &ctf.Event{Class: &tracetest.DemoClasses[1], Time: 1e18, Fields: []ctf.Value{
		ctf.StringValue("GET"), ctf.StringValue("/items/7"), ctf.IntValue(200), ctf.IntValue(123456), ctf.IntValue(99)}}
	b.ReportAllocs()
	for b.Loop() {
		ev.Time += 200_000
		if err := w.WriteEvent(ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(out.n)/float64(b.N), "out-B/event")
}
