package demoservice

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Main is the command line of the demo service (examples/demo), which
// "tracemark demo" builds and runs in a child process:
//
//	demo [-rate N] [-lifetime D] [-attached]
//
// It serves until SIGINT or SIGTERM, the lifetime, or, with -attached,
// the end of stdin (the process that started it is done with it, or
// died). Once the agent and the HTTP server listen it prints
//
//	ready pid=PID http=http://127.0.0.1:PORT socket=PATH
//
// on stdout, the line "tracemark demo" waits for, and what to try. What
// the service has to say about itself (its plugin, errors) goes to
// stderr. Main returns the exit status: 0, 1 after an error, 2 for a bad
// command line.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rate := fs.Int("rate", 300, fmt.Sprintf("requests per second the service sends itself, at most %d (0: no load)", MaxRate))
	lifetime := fs.Duration("lifetime", 0, "exit this long after the service is ready, whatever happens (0: no limit)")
	attached := fs.Bool("attached", false, "exit when standard input closes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *rate < 0 || *lifetime < 0 {
		fmt.Fprintf(stderr, "demo: want [-rate N] [-lifetime D] [-attached], N and D not negative; got %q\n", args)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *attached {
		go func() {
			_, _ = io.Copy(io.Discard, stdin)
			cancel()
		}()
	}
	err := Run(ctx, Config{
		Load: *rate > 0, Rate: *rate, Lifetime: *lifetime, Plugin: true, Log: stderr,
		Ready: func(r Ready) {
			fmt.Fprintf(stdout, "ready pid=%d http=%s socket=%s\n", r.PID, r.HTTP, r.Socket)
			fmt.Fprintf(stdout, "try: tracemark list -p %d   (in a checkout: go run ./cmd/tracemark list -p %d)\n", r.PID, r.PID)
		},
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
