package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
)

func sessionsCmd(a *app) *cobra.Command {
	var (
		pid    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "sessions -p PID",
		GroupID: "sessions",
		Short:   "List the sessions of a process",
		Long: `List the sessions the agent of a process holds: named sessions (created
by enable, kept until disable) and the ephemeral sessions of running
record, stream and stats commands, with their rules and counters.`,
		Example: example(
			"tracemark sessions -p 1234",
			"tracemark sessions -p 1234 --json"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, _, err := call(a, cmd.Context(), pid, (*wire.Client).Sessions)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, list)
			}
			if len(list) == 0 {
				fmt.Fprintln(a.stderr, "no sessions (tracemark enable creates one)")
				return nil
			}
			printSessions(a, list)
			return nil
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printSessions(a *app, list []wire.SessionInfo) {
	t := newTable(a.stdout, "SESSION", "MODE", "STATE", "BUFFER", "RECORDED", "LOST", "RULES")
	for _, s := range list {
		name := s.Name
		if s.Ephemeral {
			name += " (" + dash(clean(s.Client)) + ")"
		}
		t.row(name, s.Mode, s.State, fmt.Sprintf("%s x%d", humanBytes(uint64(s.Buffer)), s.Streams),
			strconv.FormatUint(s.Stats.Recorded, 10), strconv.FormatUint(s.Stats.Discarded, 10), ruleList(s.Rules))
	}
	t.flush()
	for _, s := range list {
		if tr := s.Trigger; tr != nil {
			fmt.Fprintf(a.stdout, "%s: snapshot on %s, at most every %s, into %s: fired %d, taken %d, suppressed %d\n",
				s.Name, clean(tr.On), tr.Every, clean(tr.Dir), tr.Fired, tr.Taken, tr.Suppressed)
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
