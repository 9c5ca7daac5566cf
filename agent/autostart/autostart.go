// Package autostart starts the tracemark agent when the program runs with
// TRACEMARK_AGENT=1, so that a program can be made traceable by the
// environment it is started in, without a line of code beyond the import:
//
//	import _ "github.com/tracemark/tracemark/agent/autostart"
//
//	TRACEMARK_AGENT=1 ./myservice
//
// With the variable unset (or set to anything but 1), importing the
// package does nothing. The agent is started during package
// initialisation and is never closed: its socket stays behind when the
// program exits (Go runs no code at exit), until the next "tracemark ps"
// (or any command that looks for processes by name) or the next agent to
// start in the same directory removes it. Programs that want to
// remove it at exit call agent.Start themselves and Close it.
//
// A failure to start is reported once on standard error and does not
// stop the program: tracing is never a reason for a service not to run.
package autostart

import (
	"fmt"
	"os"

	"github.com/tracemark/tracemark/agent"
)

// EnvAgent is the variable that turns the agent on.
const EnvAgent = "TRACEMARK_AGENT"

// Agent is the agent started from the environment, or nil.
var Agent *agent.Agent

func init() {
	if os.Getenv(EnvAgent) != "1" {
		return
	}
	a, err := agent.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tracemark: %s=1 but the agent did not start: %v\n", EnvAgent, err)
		return
	}
	Agent = a
}
