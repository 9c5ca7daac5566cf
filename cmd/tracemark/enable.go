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
		pid, name, mode, buffer string
		rf                      ruleFlags
		snapOn, snapDir         string
		snapEvery               time.Duration
		snapGo                  bool
	)
	cmd := &cobra.Command{
		Use:     "enable -p PID -s SESSION -e GLOB [--filter EXPR] [-e GLOB ...]",
		GroupID: "sessions",
		Short:   "Record markers into a long-lived named session",
		Long: `Add rules to a named session of a process, creating and starting the
session if it does not exist. The session lives in the process until
"tracemark disable" removes it, whether or not anyone is connected.

In overwrite mode the session is a flight recorder: it keeps the most
recent events and "tracemark snapshot" writes them to a trace at any
time. In discard mode it keeps the oldest.

--buffer is per shard, and the session has one shard per CPU the process
may use (its GOMAXPROCS, which follows a container's CPU limit): it holds
--buffer times that, as "tracemark sessions" shows. All sessions of the
process share its recording memory budget (TRACEMARK_MEMORY in the
process, default 256 MiB or less in a container with a memory limit); a
session that does not fit is refused.

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
			if name == "" || len(rf.rules) == 0 {
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
			req := wire.EnableRequest{Rules: rf.rules, Mode: mode, Buffer: buffer}
			if snapOn != "" {
				dir, err := filepath.Abs(snapDir)
				if err != nil {
					return err
				}
				req.Trigger = &wire.TriggerRequest{On: snapOn, Dir: dir, Every: snapEvery.String(), GoTrace: snapGo}
			} else if snapGo {
				return usagef("--snapshot-go-trace needs --snapshot-on")
			}
			si, err := enableChecked(ctx, t.client, name, req)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "session %s: %s mode, %s buffer x%d (%s), %s\n",
				si.Name, si.Mode, humanBytes(uint64(si.Buffer)), si.Streams, humanBytes(uint64(si.Memory)), si.State)
			printSessions(a, []wire.SessionInfo{*si})
			warnLeftOut(a.stderr, si.Rules)
			return nil
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().StringVarP(&name, "session", "s", "", "session name")
	rf.add(cmd)
	cmd.Flags().StringVar(&mode, "mode", "", "discard (keep the oldest) or overwrite (keep the newest); for a new session, default discard")
	cmd.Flags().StringVar(&buffer, "buffer", "", "buffer size per shard (one per CPU the process may use: GOMAXPROCS) for a new session, such as 16M (default 4M)")
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
