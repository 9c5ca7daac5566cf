package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
)

func listCmd(a *app) *cobra.Command {
	var (
		pid    string
		asJSON bool
		long   bool
	)
	cmd := &cobra.Command{
		Use:     "list -p PID [GLOB]",
		GroupID: "find",
		Short:   "List the markers of a process",
		Long: `List the markers of a process, or those whose name matches GLOB
("http:*", "*:request_*"): their fields and types, stability, state
(how many probes are connected) and the events the agent's sessions saw.
With -l, also the format string, Go module, source location and
description.`,
		Example: example(
			"tracemark list -p 1234",
			"tracemark list -p myservice 'http:*' -l",
			"tracemark list -p 1234 --json | jq '.[] | select(.stability == \"stable\") | .name'"),
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			glob := ""
			if len(argv) == 1 {
				glob = argv[0]
			}
			ms, _, err := call(a, cmd.Context(), pid, func(c *wire.Client, ctx context.Context) ([]wire.Marker, error) {
				return c.Markers(ctx, glob)
			})
			if err != nil {
				return err
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&long, "long", "l", false, "also show format, module, location and description")
	return cmd
}

func printMarkers(a *app, ms []wire.Marker, long bool) {
	if long {
		for _, m := range ms {
			fmt.Fprintf(a.stdout, "%s  (%s, %s, %d events)\n", m.Name, m.Stability, markerState(m), m.Events)
			t := newTable(a.stdout)
			t.row("    fields:", dash(fieldList(m.Fields)))
			t.row("    format:", dash(clean(m.Format)))
			t.row("    module:", dash(clean(m.Module)))
			t.row("    defined at:", clean(m.Location))
			if m.Doc != "" {
				t.row("    doc:", clean(m.Doc))
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
		return "refused (" + clean(m.Refused) + ")"
	case !m.Enabled:
		return "off"
	case len(m.Sessions) > 0:
		return fmt.Sprintf("on: %d probes (%s)", m.Probes, strings.Join(m.Sessions, ","))
	}
	return fmt.Sprintf("on: %d probes", m.Probes)
}

func fieldList(fs []wire.Field) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Name + ":" + f.Kind
	}
	return strings.Join(parts, " ")
}
