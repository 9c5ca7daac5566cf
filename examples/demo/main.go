// Command demo is the sample service of "tracemark demo": an instrumented
// HTTP service that sends itself load, with the example plugin, a request
// classifier in the tracemark sandbox, whose markers (classifier:*) show
// up beside the service's. "tracemark demo" builds it, starts it, records
// it and stops it; run it yourself to trace it by hand:
//
//	go run ./examples/demo &
//	go run ./cmd/tracemark ps
//	go run ./cmd/tracemark list -p demo
//	go run ./cmd/tracemark stats -p demo -e http:request_done --by status --hist latency
//	go run ./cmd/tracemark lsmod -p demo
//
// Its flags: -rate N requests per second (300; 0: no load), -lifetime D
// to exit after D, -attached to exit when standard input closes. Stop it
// with Ctrl-C or kill.
package main

import (
	"os"

	"github.com/tracemark/tracemark/examples/demoservice"
)

func main() {
	os.Exit(demoservice.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
