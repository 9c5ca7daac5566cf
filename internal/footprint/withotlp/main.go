// Command withotlp is the footprint hello world of withagent, exporting
// to an OpenTelemetry collector from its environment as well
// (export/otlp/otlpenv).
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	_ "github.com/tracemark/tracemark/agent/autostart"
	"github.com/tracemark/tracemark/export/otlp/otlpenv"
	"github.com/tracemark/tracemark/marker"
)

var requestDone = marker.Define2("http:request_done",
	marker.String("path"), marker.Duration("latency"))

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	x, err := otlpenv.StartFromEnv()
	if err != nil {
		log.Error("otlp", "err", err)
	}
	defer x.Close(context.Background())
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		log.Info("request", "path", r.URL.Path)
		w.Write([]byte("hello\n"))
		requestDone.Fire(r.URL.Path, time.Since(start))
	})
	if err := http.ListenAndServe("127.0.0.1:0", nil); err != nil {
		log.Error("serve", "err", err)
	}
}
