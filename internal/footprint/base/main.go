// Command base is the hello world the footprint is measured against: an
// HTTP server that logs with log/slog.
package main

import (
	"log/slog"
	"net/http"
	"os"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Info("request", "path", r.URL.Path)
		w.Write([]byte("hello\n"))
	})
	if err := http.ListenAndServe("127.0.0.1:0", nil); err != nil {
		log.Error("serve", "err", err)
	}
}
