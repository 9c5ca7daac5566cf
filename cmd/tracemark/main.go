// Command tracemark is the operator's side of tracemark: it finds
// instrumented processes, lists their markers, records them into CTF
// traces, streams and counts events live, and manages flight-recorder
// sessions, over the control socket of the agent inside each process.
//
// Run "tracemark help" for the commands and "tracemark help COMMAND" for
// one, with examples. "tracemark demo" shows it all on a sample service.
//
// Exit codes:
//
//	0  success
//	1  error
//	2  usage error: bad flags or arguments, or a glob, filter or value the
//	   agent refused
//	3  the traced process died during a recording, stream or count (what
//	   was received until then is kept: the trace is valid)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	stop := startCPUProfile(os.Stderr)
	code := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if isUnknownCommand(err) {
		err = &usageError{err}
	}
	code := exitCode(err)
	fmt.Fprintf(stderr, "tracemark: %v\n", err)
	var usage *usageError
	if errors.As(err, &usage) {
		fmt.Fprintln(stderr, "Run 'tracemark help' for usage.")
	}
	return code
}
