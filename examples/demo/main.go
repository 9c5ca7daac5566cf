// Command demo runs the sample service of "tracemark demo" in the
// foreground, with its own load, so that you can trace it by hand:
//
//	go run ./examples/demo &
//	go run ./cmd/tracemark ps
//	go run ./cmd/tracemark list -p demo
//	go run ./cmd/tracemark stats -p demo -e http:request_done --by status --hist latency
//	go run ./cmd/tracemark lsmod -p demo
//
// It loads the example plugin, a request classifier in the tracemark
// sandbox, whose markers (classifier:*) show up beside the service's.
//
// Stop it with Ctrl-C. "tracemark demo" starts the same service, records
// it, and stops it for you.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/tracemark/tracemark/examples/demoservice"
)

func main() {
	rate := flag.Int("rate", 300, "requests per second the service sends itself (0: no load)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := demoservice.Config{Load: *rate > 0, Rate: *rate, Plugin: true, Log: os.Stderr, Ready: func(r demoservice.Ready) {
		fmt.Printf("demo service: pid %d, %s, agent socket %s\n", r.PID, r.HTTP, r.Socket)
		fmt.Printf("try: go run ./cmd/tracemark list -p %d\n", r.PID)
	}}
	if err := demoservice.Run(ctx, cfg); err != nil {
		log.Fatal(err)
	}
}
