package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
)

func disableCmd(a *app) *cobra.Command {
	var (
		pid, name string
		globs     []string
	)
	cmd := &cobra.Command{
		Use:     "disable -p PID -s SESSION [-e GLOB ...]",
		GroupID: "sessions",
		Short:   "Remove rules from a named session, or the session itself",
		Long: `With -e, remove the session's rules with exactly these globs: the markers
they matched stop being recorded (the session keeps what it holds).
Without -e, destroy the session and free its buffers.`,
		Example: example(
			"tracemark disable -p 1234 -s flight -e 'db:*'",
			"tracemark disable -p 1234 -s flight"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usagef("disable needs -s SESSION")
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
			if len(globs) == 0 {
				if err := t.client.Destroy(ctx, name); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "session %s destroyed\n", name)
				return nil
			}
			si, err := t.client.Disable(ctx, name, globs)
			if err != nil {
				return err
			}
			printSessions(a, []wire.SessionInfo{*si})
			return nil
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().StringVarP(&name, "session", "s", "", "session name")
	cmd.Flags().StringArrayVarP(&globs, "enable", "e", nil, "a glob given to enable (repeatable); without -e the session is destroyed")
	return cmd
}
