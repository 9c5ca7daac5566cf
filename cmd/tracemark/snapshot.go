package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
)

func snapshotCmd(a *app) *cobra.Command {
	var pid, name, out string
	cmd := &cobra.Command{
		Use:     "snapshot -p PID [-s SESSION] [-o DIR]",
		GroupID: "sessions",
		Short:   "Write what a named session holds into a CTF trace",
		Long: `Copy what a named session's buffers hold into a new CTF trace, without
stopping or emptying the session: the flight recorder's dump. For a
session in overwrite mode that is its most recent events.

Without -s, the process's only named session is used (or its only one in
overwrite mode).`,
		Example: example(
			"tracemark enable -p 1234 -s flight -e 'http:*' --mode overwrite --buffer 4M",
			"tracemark snapshot -p 1234 -o incident-42      # later, when something happened",
			"babeltrace2 incident-42"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out != "" {
				if err := checkTraceDir(out); err != nil {
					return err
				}
			}
			t, err := a.connect(cmd.Context(), pid)
			if err != nil {
				return err
			}
			if name == "" {
				if name, err = pickSession(cmd.Context(), a, t); err != nil {
					return err
				}
			}
			return runSnapshot(cmd.Context(), a, t, name, out)
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().StringVarP(&name, "session", "s", "", "the named session")
	cmd.Flags().StringVarP(&out, "output", "o", "", "trace directory (default tracemark-snapshot-PROGRAM-PID-TIME)")
	return cmd
}

// pickSession chooses the session to snapshot when -s is not given.
func pickSession(ctx context.Context, a *app, t *target) (string, error) {
	ctx, cancel := a.requestCtx(ctx)
	defer cancel()
	list, err := t.client.Sessions(ctx)
	if err != nil {
		return "", err
	}
	var all, overwrite []string
	for _, s := range list {
		if s.Ephemeral {
			continue
		}
		all = append(all, s.Name)
		if s.Mode == "overwrite" {
			overwrite = append(overwrite, s.Name)
		}
	}
	switch {
	case len(all) == 1:
		return all[0], nil
	case len(overwrite) == 1:
		return overwrite[0], nil
	case len(all) == 0:
		return "", fmt.Errorf("the process has no named session to snapshot (create one with tracemark enable --mode overwrite)")
	}
	return "", usagef("the process has several sessions (%s): choose one with -s", strings.Join(all, ", "))
}

func runSnapshot(ctx context.Context, a *app, t *target, name, out string) error {
	s, err := t.client.Snapshot(ctx, name)
	if err != nil {
		return err
	}
	defer s.Close()
	if out == "" {
		out = defaultTraceDir("tracemark-snapshot", s.Hello)
	}
	trace, err := createTrace(out, s.Hello)
	if err != nil {
		return err
	}
	c := newCapture(s, trace)
	runErr := c.run()
	closeErr := trace.close()
	if runErr == nil && c.end.Reason == wire.EndError {
		runErr = fmt.Errorf("snapshot failed: %v", c.end.Error)
	}
	if runErr == nil {
		runErr = closeErr
	}
	fmt.Fprintf(a.stdout, "Snapshot of session %s (%s mode) of pid %d (%s): %d events (%s).\n",
		name, s.Hello.Mode, s.Hello.PID, clean(s.Hello.Program), c.events, humanBytes(c.bytes))
	printMarkerCounts(a, c)
	fmt.Fprintf(a.stdout, "Trace: %s\nOpen it with: babeltrace2 %s\n", out, out)
	return runErr
}
