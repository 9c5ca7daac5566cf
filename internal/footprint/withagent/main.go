// Command withagent is the footprint hello world with one marker and the
// agent started from the environment (agent/autostart).
package main

import (
	"log/slog"
	"net/http"
	"os"
	"time"

	_ "github.com/tracemark/tracemark/agent/autostart"
	"github.com/tracemark/tracemark/marker"
)

var requestDone = marker.Define2("http:request_done",
	marker.String("path"), marker.Duration("latency"))

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
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
