package otlpenv_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/tracemark/tracemark/export/otlp/otlpenv"
	"github.com/tracemark/tracemark/marker"
)

var thumbnailDone = marker.Define2("example_jobs:thumbnail_done",
	marker.String("image"), marker.Duration("took"), marker.SpanDuration("took"))

// A batch job exports its events when its environment names markers and a
// collector; without them StartFromEnv returns nil and nothing runs.
func Example() {
	// A stand-in for the collector's OTLP/HTTP receiver.
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer col.Close()
	// As the job would be started:
	//	TRACEMARK_ENABLE='example_jobs:*' OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 ./job
	os.Setenv("TRACEMARK_ENABLE", "example_jobs:*")
	os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
	defer os.Unsetenv("TRACEMARK_ENABLE")
	defer os.Unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT")

	x, err := otlpenv.StartFromEnv()
	if err != nil {
		log.Print(err) // a bad variable: the job runs on, without exporting
	}
	for _, img := range []string{"a.png", "b.png", "c.png"} {
		thumbnailDone.Fire(img, 3*time.Millisecond)
	}
	// Close exports what is left; at exit, bound how long a collector
	// that is down may hold the job.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := x.Close(ctx); err != nil {
		log.Print(err)
	}
	st := x.Stats()
	fmt.Printf("%d events recorded; %d log records and spans exported, %d lost\n",
		st.Session.Delivered, st.Exporter.Exported, st.Exporter.Lost())
	// Output: 3 events recorded; 6 log records and spans exported, 0 lost
}
