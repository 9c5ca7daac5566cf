package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

func sessionsCmd(a *app) *cobra.Command {
	var (
		pid         string
		asJSON, all bool
	)
	cmd := &cobra.Command{
		Use:     "sessions -p PID",
		GroupID: "sessions",
		Short:   "List the sessions of a process",
		Long: `List the sessions the agent of a process holds: named sessions (created
by enable, kept until disable) and the ephemeral sessions of running
record, stream and stats commands, with their rules and counters.

BUFFER is the buffer size per shard times the number of shards (one per
CPU the process may use, GOMAXPROCS); MEMORY is what the session holds.
The last line shows the process's recording memory in use, the sessions
the program created itself included, and its budget.`,
		Example: example(
			"tracemark sessions -p 1234",
			"tracemark sessions -p 1234 --json"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all {
				return sessionsAll(cmd.Context(), a, asJSON)
			}
			resp, _, err := call(a, cmd.Context(), pid, (*client.Client).SessionList)
			if err != nil {
				return err
			}
			list := resp.Sessions
			if asJSON {
				return writeJSON(a.stdout, list)
			}
			if len(list) == 0 {
				fmt.Fprintln(a.stderr, "no sessions (tracemark enable creates one)")
			} else {
				printSessions(a, list)
			}
			if resp.MemoryBudget > 0 { // agents before the budget do not say
				fmt.Fprintf(a.stdout, "recording memory: %s in use of a %s budget\n",
					humanBytes(uint64(resp.MemoryInUse)), humanBytes(uint64(resp.MemoryBudget)))
			}
			return nil
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().BoolVar(&all, "all", false, "the sessions of every process you may reach on the host (what applies where, a daemon's included)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printSessions(a *app, list []wire.SessionInfo) {
	t := newTable(a.stdout, "SESSION", "MODE", "STATE", "BUFFER", "MEMORY", "RECORDED", "LOST", "RULES")
	for _, s := range list {
		name := s.Name
		if s.Ephemeral {
			name += " (" + dash(clean(s.Client)) + ")"
		}
		t.row(name, s.Mode, s.State, fmt.Sprintf("%s x%d", humanBytes(uint64(s.Buffer)), s.Streams), humanBytes(uint64(s.Memory)),
			strconv.FormatUint(s.Stats.Recorded, 10), strconv.FormatUint(s.Stats.Discarded, 10), ruleList(s.Rules))
	}
	t.flush()
	for _, s := range list {
		if n := s.Stats.Unsharded; n > 0 {
			fmt.Fprintf(a.stdout, "%s: %d events lost on CPUs added since the session started (GOMAXPROCS raised): no memory budget left for their buffer\n",
				s.Name, n)
		}
		if tr := s.Trigger; tr != nil {
			fmt.Fprintf(a.stdout, "%s: snapshot on %s, at most every %s, into %s: fired %d, taken %d, failed %d, suppressed %d\n",
				s.Name, clean(tr.On), tr.Every, clean(tr.Dir), tr.Fired, tr.Taken, tr.Failed, tr.Suppressed)
			if tr.LastSnapshot != "" {
				fmt.Fprintf(a.stdout, "%s: last snapshot %s\n", s.Name, clean(tr.LastSnapshot))
				if tr.GoTrace {
					fmt.Fprintf(a.stdout, "%s: Go's flight recorder beside it: %s.go.trace\n", s.Name, clean(tr.LastSnapshot))
				}
			}
			if tr.LastError != "" {
				fmt.Fprintf(a.stdout, "%s: last snapshot failed: %s\n", s.Name, clean(tr.LastError))
			}
		}
	}
}

func ruleList(rules []wire.RuleInfo) string {
	if len(rules) == 0 {
		return "-"
	}
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = r.Pattern
		if r.Filter != "" {
			parts[i] += " if " + clean(r.Filter)
		}
	}
	return strings.Join(parts, "; ")
}
