package main

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
)

func listCmd(a *app) *cobra.Command {
	var (
		pid    string
		globs  []string
		asJSON bool
		long   bool
	)
	cmd := &cobra.Command{
		Use:     "list -p PID [GLOB | -e GLOB ...]",
		GroupID: "find",
		Short:   "List the markers of a process",
		Long: `List the markers of a process, or those whose name matches a GLOB
("http:*", "*:request_*"), given as an argument or with -e as for the
other commands (repeatable): their fields and types, stability, state
(how many probes are connected) and the events the agent's sessions saw.
With -l, also the format string, Go module, source location and
description, and why a refused marker is refused.`,
		Example: example(
			"tracemark list -p 1234",
			"tracemark list -p myservice 'http:*' -l",
			"tracemark list -p myservice -e 'http:*' -e 'storage:*'",
			"tracemark list -p 1234 --json | jq '.[] | select(.stability == \"stable\") | .name'"),
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			globs = append(argv, globs...)
			glob := "" // the agent filters one glob; several are filtered here
			if len(globs) == 1 {
				glob = globs[0]
			}
			ms, _, err := call(a, cmd.Context(), pid, func(c *wire.Client, ctx context.Context) ([]wire.Marker, error) {
				return c.Markers(ctx, glob)
			})
			if err != nil {
				return err
			}
			if len(globs) > 1 {
				for _, g := range globs {
					if err := checkGlob(g); err != nil {
						return err
					}
				}
				ms = slices.DeleteFunc(ms, func(m wire.Marker) bool { return !matchesAny(globs, m.Name) })
				glob = strings.Join(globs, ", ")
			}
			if asJSON {
				return writeJSON(a.stdout, ms)
			}
			if len(ms) == 0 {
				fmt.Fprintf(a.stderr, "no marker matches %q\n", glob)
				return nil
			}
			printMarkers(a, ms, long)
			return nil
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().StringArrayVarP(&globs, "enable", "e", nil, "list the markers matching this glob (repeatable; as the argument GLOB)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&long, "long", "l", false, "also show format, module, location and description")
	return cmd
}

func printMarkers(a *app, ms []wire.Marker, long bool) {
	if long {
		for _, m := range ms {
			state := markerState(m)
			if m.Refused != "" {
				state = "refused"
			}
			fmt.Fprintf(a.stdout, "%s  (%s, %s, %d events)\n", m.Name, m.Stability, state, m.Events)
			t := newTable(a.stdout)
			t.row("    fields:", dash(fieldList(m.Fields)))
			t.row("    format:", dash(clean(m.Format)))
			t.row("    module:", dash(clean(m.Module)))
			t.row("    defined at:", clean(m.Location))
			if m.Doc != "" {
				t.row("    doc:", clean(m.Doc))
			}
			if m.Refused != "" {
				t.row("    refused:", cleanReason(m.Refused))
			}
			t.flush()
		}
		return
	}
	t := newTable(a.stdout, "MARKER", "STABILITY", "STATE", "EVENTS", "FIELDS")
	for _, m := range ms {
		t.row(m.Name, m.Stability, markerState(m), strconv.FormatUint(m.Events, 10), fieldList(m.Fields))
	}
	t.flush()
}

func markerState(m wire.Marker) string {
	switch {
	case m.Refused != "":
		return "refused (-l says why)"
	case !m.Enabled:
		return "off"
	case len(m.Sessions) > 0:
		return fmt.Sprintf("on: %s (%s)", count(m.Probes, "probe"), strings.Join(m.Sessions, ","))
	}
	return "on: " + count(m.Probes, "probe")
}

func fieldList(fs []wire.Field) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Name + ":" + f.Kind
	}
	return strings.Join(parts, " ")
}

// checkGlob is a usage error for a malformed glob, which the agent would
// refuse if it had to match it.
func checkGlob(g string) error {
	if _, err := path.Match(g, ""); err != nil {
		return usagef("-e %s: bad pattern: %v", g, err)
	}
	return nil
}
