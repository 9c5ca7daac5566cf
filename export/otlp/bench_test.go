package otlp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/otlptest"
)

// BenchmarkExport measures the whole exporter: encoding on the caller's
// goroutine, batching, and sending over HTTP to a local receiver that
// reads and discards the requests. Reported as events/s.
func BenchmarkExport(b *testing.B) {
	for _, comp := range []string{CompressionNone, CompressionGzip} {
		b.Run(comp, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
			}))
			defer srv.Close()
			e, err := New(srv.URL, WithHTTPClient(srv.Client()), WithCompression(comp), WithBlock())
			if err != nil {
				b.Fatal(err)
			}
			c := Class{
				Name:   "http:request_done",
				Fields: []Field{{"method", "string"}, {"path", "string"}, {"status", "int64"}, {"latency", "duration"}, {"bytes", "uint64"}},
				Scope:  Scope{Name: "example.com/demo", Version: "v1.0.0"},
			}
			vals := []ctf.Value{ctf.StringValue("GET"), ctf.StringValue("/api/items/42"), ctf.IntValue(200), ctf.IntValue(1234567), ctf.UintValue(512)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				e.Log(&c, int64(i), vals, 0)
			}
			if err := e.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			st := e.Stats()
			b.ReportMetric(float64(st.Exported)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(st.Bytes)/float64(st.Exported), "wire-B/event")
		})
	}
}

// BenchmarkExportReceived is BenchmarkExport against a receiver that
// decodes the requests far enough to count their log records, as a
// collector must, with one and two senders: events/s is what the
// receiver counted, and the run fails unless it counted every event
// exported.
func BenchmarkExportReceived(b *testing.B) {
	for _, bc := range []struct {
		comp    string
		senders int
	}{{CompressionNone, 1}, {CompressionNone, 2}, {CompressionGzip, 1}, {CompressionGzip, 2}} {
		b.Run(fmt.Sprintf("%s/senders=%d", bc.comp, bc.senders), func(b *testing.B) {
			var recv otlptest.Counter
			srv := httptest.NewServer(&recv)
			defer srv.Close()
			e, err := New(srv.URL, WithHTTPClient(srv.Client()), WithCompression(bc.comp), WithBlock(), WithSenders(bc.senders))
			if err != nil {
				b.Fatal(err)
			}
			c := Class{
				Name:   "http:request_done",
				Fields: []Field{{"method", "string"}, {"path", "string"}, {"status", "int64"}, {"latency", "duration"}, {"bytes", "uint64"}},
				Scope:  Scope{Name: "example.com/demo", Version: "v1.0.0"},
			}
			vals := []ctf.Value{ctf.StringValue("GET"), ctf.StringValue("/api/items/42"), ctf.IntValue(200), ctf.IntValue(1234567), ctf.UintValue(512)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				e.Log(&c, int64(i), vals, 0)
			}
			if err := e.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			st := e.Stats()
			if got := recv.Logs.Load(); got != st.Exported || st.Exported != st.Events {
				b.Fatalf("received %d, exported %d of %d", got, st.Exported, st.Events)
			}
			b.ReportMetric(float64(recv.Logs.Load())/b.Elapsed().Seconds(), "events/s")
		})
	}
}
