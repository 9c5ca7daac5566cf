package main

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
)

func psCmd(a *app) *cobra.Command {
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:     "ps",
		GroupID: "find",
		Short:   "List your instrumented processes",
		Long: `List the processes of your user whose tracemark agent answers: pid,
program, the version of tracemark it was built with, markers (defined and
enabled), sessions (named and recordings) and taint letters. Sockets left behind by dead processes are ignored.`,
		Example: example(
			"tracemark ps",
			"tracemark ps --json | jq '.[].pid'",
			"sudo tracemark ps --all   # every user's, and inside containers"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all {
				return psAll(cmd.Context(), a, asJSON)
			}
			procs := a.discover(cmd.Context())
			if asJSON {
				infos := []*wire.Info{}
				for _, p := range procs {
					if p.err == nil {
						infos = append(infos, p.info)
					}
				}
				return writeJSON(a.stdout, infos)
			}
			t := newTable(a.stdout, "PID", "PROGRAM", "VERSION", "MARKERS", "ENABLED", "SESSIONS", "RECORDINGS", "TAINT", "UP")
			for _, p := range procs {
				if p.err != nil {
					t.row(strconv.Itoa(p.pid), "?", "-", "-", "-", "-", "-", "-", "agent not answering: "+clean(p.err.Error()))
					continue
				}
				i := p.info
				t.row(strconv.Itoa(i.PID), clean(i.Program), dash(clean(i.Tracemark)), strconv.Itoa(i.Markers), strconv.Itoa(i.Enabled),
					strconv.Itoa(i.Sessions), strconv.Itoa(i.Recordings), dash(i.Taint), since(i.Started))
			}
			t.flush()
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every agent you may reach on the host: for root, those of all users and inside containers (other mount and PID namespaces), with host pid, pid in the container and the container")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the agents' /v1/info answers)")
	return cmd
}
