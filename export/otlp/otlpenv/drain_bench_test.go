package otlpenv

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tracemark/tracemark/marker"
)

var benchEvent = marker.Define3("envbench:event", marker.Int32("i"), marker.Int64("v"), marker.String("s"))

// BenchmarkDrain is what exporting in process costs the program beyond
// recording: draining the buffers into the exporter (decoding or
// transcoding, encoding, committing), for scripts/load's event (int32,
// int64, "hello"), to a collector that reads and discards. Firing is
// left out of the timing. ns/op is per event.
func BenchmarkDrain(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	b.Setenv("TRACEMARK_ENABLE", "envbench:*")
	b.Setenv("TRACEMARK_BUFFER", "64M")
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	x, err := StartFromEnv()
	if err != nil || x == nil {
		b.Fatalf("StartFromEnv: %v %v", x, err)
	}
	x.cancel() // no drains but the benchmark's
	<-x.done
	const chunk = 200_000
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		b.StopTimer()
		for i := range chunk {
			benchEvent.Fire(int32(i), 0, "hello")
		}
		b.StartTimer()
		x.drain()
	}
	b.StopTimer()
	if st := x.Stats(); st.Session.Discarded != 0 || st.Exporter.Dropped != 0 {
		b.Fatalf("lost events: %+v", st)
	}
	x.Close(context.Background())
}
