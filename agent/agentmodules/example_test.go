package agentmodules_test

import (
	"context"
	"log"

	"github.com/tracemark/tracemark/agent"
	"github.com/tracemark/tracemark/agent/agentmodules"
	"github.com/tracemark/tracemark/module/wasm"
)

// A program that lets operators load modules from a directory it trusts
// gives the agent its module host; "tracemark insmod -p PID FILE.wasm"
// then loads into it.
func ExampleWithHost() {
	host, err := wasm.NewHost(wasm.WithTrustedDir("/srv/plugins"))
	if err != nil {
		log.Fatal(err)
	}
	defer host.Close(context.Background())
	a, err := agent.Start(agentmodules.WithHost(host))
	if err != nil {
		log.Printf("tracing unavailable: %v", err)
		return
	}
	defer a.Close()
	// ... the program runs; "tracemark lsmod -p PID" lists host's modules.
}
