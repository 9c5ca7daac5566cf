package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
)

func enableCmd(a *app) *cobra.Command {
	var (
		pid, name, filter, mode, buffer string
		globs                           []string
		snapOn, snapDir                 string
		snapEvery                       time.Duration
		snapGo                          bool
	)
	cmd := &cobra.Command{
		Use:     "enable -p PID -s SESSION -e GLOB [-e GLOB ...]",
		GroupID: "sessions",
		Short:   "Record markers into a long-lived named session",
		Long: `Add rules to a named session of a process, creating and starting the
session if it does not exist. The session lives in the process until
"tracemark disable" removes it, whether or not anyone is connected.

In overwrite mode the session is a flight recorder: it keeps the most
recent events (--buffer per CPU) and "tracemark snapshot" writes them to
a trace at any time. In discard mode it keeps the oldest.

With --snapshot-on, the process itself writes a snapshot whenever a
marker matching the glob fires (an app:panic, a slow request), at most
once per --snapshot-every, each into a new trace directory under
--snapshot-dir; "tracemark sessions" shows the last one. With
--snapshot-go-trace the process also runs Go's flight recorder and writes
its window (the last --snapshot-every at least) beside each snapshot, as
DIR.go.trace, where the session's markers appear as log events.`,
		Example: example(
			"tracemark enable -p 1234 -s flight -e 'http:*' -e 'db:*' --mode overwrite --buffer 4M",
			"tracemark enable -p 1234 -s errors -e http:request_done --filter 'status >= 500'",
			"tracemark enable -p 1234 -s blackbox -e 'http:*' --mode overwrite --snapshot-on app:panic --snapshot-dir /var/tmp/incidents"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || len(globs) == 0 {
				return usagef("enable needs -s SESSION and at least one -e GLOB")
			}
			if err := wire.CheckSessionName(name); err != nil {
				return &usageError{err}
			}
			t, err := a.connect(cmd.Context(), pid)
			if err != nil {
				return err
			}
			ctx, cancel := a.requestCtx(cmd.Context())
			defer cancel()
			req := wire.EnableRequest{Rules: rules(globs, filter), Mode: mode, Buffer: buffer}
			if snapOn != "" {
				dir, err := filepath.Abs(snapDir)
				if err != nil {
					return err
				}
				req.Trigger = &wire.TriggerRequest{On: snapOn, Dir: dir, Every: snapEvery.String(), GoTrace: snapGo}
			} else if snapGo {
				return usagef("--snapshot-go-trace needs --snapshot-on")
			}
			si, err := t.client.Enable(ctx, name, req)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "session %s: %s mode, %s buffer x%d, %s\n",
				si.Name, si.Mode, humanBytes(uint64(si.Buffer)), si.Streams, si.State)
			printSessions(a, []wire.SessionInfo{*si})
			return nil
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().StringVarP(&name, "session", "s", "", "session name")
	cmd.Flags().StringArrayVarP(&globs, "enable", "e", nil, "markers to record: a name or a glob (repeatable)")
	cmd.Flags().StringVar(&filter, "filter", "", "keep only events for which this CEL expression over the fields is true")
	cmd.Flags().StringVar(&mode, "mode", "", "discard (keep the oldest) or overwrite (keep the newest); for a new session, default discard")
	cmd.Flags().StringVar(&buffer, "buffer", "", "buffer size per CPU for a new session, such as 4M (default 1M)")
	cmd.Flags().StringVar(&snapOn, "snapshot-on", "", "write a snapshot when a marker matching this glob fires")
	cmd.Flags().StringVar(&snapDir, "snapshot-dir", "tracemark-snapshots", "directory for triggered snapshots (made absolute; written by the traced process)")
	cmd.Flags().DurationVar(&snapEvery, "snapshot-every", wire.DefaultTriggerEvery, "at most one triggered snapshot per this interval")
	cmd.Flags().BoolVar(&snapGo, "snapshot-go-trace", false, "also run Go's flight recorder and write its window beside each triggered snapshot, as DIR.go.trace")
	return cmd
}

// rules makes one rule per glob, all with the same filter.
func rules(globs []string, filter string) []wire.Rule {
	out := make([]wire.Rule, len(globs))
	for i, g := range globs {
		out[i] = wire.Rule{Pattern: g, Filter: filter}
	}
	return out
}
