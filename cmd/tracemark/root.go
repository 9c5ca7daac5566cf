package main

import (
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// app holds what every command shares: output streams and global flags.
type app struct {
	stdout, stderr io.Writer
	socket         string        // --socket: bypass discovery
	timeout        time.Duration // --timeout: for requests that are not streams
}

const rootLong = `tracemark traces the markers of running Go programs: static tracepoints
placed in the code, cheap enough to stay in production, that an operator
can discover and record without knowing the code.

A program becomes traceable with one line (agent.Start) or by starting it
with TRACEMARK_AGENT=1 (package agent/autostart). tracemark then talks to
it over a unix socket in your runtime directory; only you and root can.

Start with "tracemark demo --keep", which leaves its sample service
running, then "tracemark ps" and "tracemark list -p tracemark-demo-service".

Exit codes:
  0  success
  1  error
  2  usage error: bad flags or arguments, or a glob, filter or value the
     agent refused
  3  the traced process died during record, stream or stats (what was
     received until then is kept; a trace is valid up to its last packet)`

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "tracemark",
		Short:         "Trace the markers of running Go programs",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionText(),
		// A bare "tracemark" prints the help rather than failing.
		Run: func(cmd *cobra.Command, _ []string) { _ = cmd.Help() },
	}
	root.SetVersionTemplate("{{.Version}}")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.PersistentFlags().StringVar(&a.socket, "socket", os.Getenv("TRACEMARK_SOCKET"),
		"talk to the agent on this socket instead of finding it by -p (env TRACEMARK_SOCKET)")
	root.PersistentFlags().DurationVar(&a.timeout, "timeout", 10*time.Second, "timeout of requests to agents (not of recordings)")
	root.AddGroup(&cobra.Group{ID: "find", Title: "Find processes and markers:"},
		&cobra.Group{ID: "trace", Title: "Trace:"},
		&cobra.Group{ID: "sessions", Title: "Long-lived sessions (flight recorders):"},
		&cobra.Group{ID: "files", Title: "Trace files:"},
		&cobra.Group{ID: "modules", Title: "Modules:"})
	for _, c := range []*cobra.Command{
		psCmd(a), listCmd(a),
		recordCmd(a), streamCmd(a), statsCmd(a), demoCmd(a),
		sessionsCmd(a), enableCmd(a), disableCmd(a), snapshotCmd(a), daemonCmd(a),
		convertCmd(a), summaryCmd(a),
		modinfoCmd(a), keygenCmd(a), signCmd(a), insmodCmd(a), rmmodCmd(a), lsmodCmd(a), taintCmd(a),
		uiCmd(a),
		versionCmd(a), manCmd(a),
	} {
		root.AddCommand(c)
	}
	addCompletions(a, root)
	return root
}

// args wraps a cobra argument check so that its failures are usage errors.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

// example formats a command's examples, one per line, indented.
func example(lines ...string) string {
	return "  " + strings.Join(lines, "\n  ")
}

// isUnknownCommand reports cobra's unknown-command error, a usage error.
func isUnknownCommand(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "unknown command")
}
