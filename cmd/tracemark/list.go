package main

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

func listCmd(a *app) *cobra.Command {
	var (
		pid     string
		globs   []string
		asJSON  bool
		long    bool
		counted time.Duration
	)
	cmd := &cobra.Command{
		Use:     "list -p PID [GLOB | -e GLOB ...]",
		GroupID: "find",
		Short:   "List the markers of a process",
		Long: `List the markers of a process, or those whose name matches a GLOB
("http:*", "*:request_*"), given as an argument or with -e as for the
other commands (repeatable): their fields and types, stability, state
(how many probes are connected and which sessions record it). With -l,
also the format string, Go module, source location and description, and
why a refused marker is refused.

With --count DURATION, list also counts how often each listed marker
fires: it records them all, unfiltered, for that long (an ephemeral
session, as "tracemark stats" does) and shows the events per marker in a
FIRED column, lost events included. That is the only count list shows:
what sessions happen to have read is theirs to tell ("tracemark
sessions"), and a flight recorder's events are not counted per marker
until they are read.`,
		Example: example(
			"tracemark list -p 1234",
			"tracemark list -p myservice 'http:*' -l",
			"tracemark list -p myservice -e 'http:*' -e 'storage:*'",
			"tracemark list -p myservice --count 5s              # how often each marker fires",
			"tracemark list -p 1234 --json | jq '.[] | select(.stability == \"stable\") | .name'"),
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			globs = append(argv, globs...)
			glob := "" // the agent filters one glob; several are filtered here
			if len(globs) == 1 {
				glob = globs[0]
			}
			if counted < 0 || counted > wire.MaxDuration {
				return usagef("--count %v: want a duration up to %v", counted, wire.MaxDuration)
			}
			ms, t, err := call(a, cmd.Context(), pid, func(c *client.Client, ctx context.Context) ([]wire.Marker, error) {
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
			var fired map[string]uint64
			if counted > 0 && len(ms) > 0 {
				if fired, err = countFirings(cmd.Context(), a, t, ms, counted); err != nil {
					return err
				}
			}
			if asJSON {
				if fired == nil {
					return writeJSON(a.stdout, ms)
				}
				out := make([]countedMarker, len(ms))
				for i, m := range ms {
					out[i] = countedMarker{Marker: m, Fired: fired[m.Name]}
				}
				return writeJSON(a.stdout, out)
			}
			if len(ms) == 0 {
				fmt.Fprintf(a.stderr, "no marker matches %q\n", glob)
				return nil
			}
			printMarkers(a, ms, long, fired, counted)
			return nil
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().StringArrayVarP(&globs, "enable", "e", nil, "list the markers matching this glob (repeatable; as the argument GLOB)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&long, "long", "l", false, "also show format, module, location and description")
	cmd.Flags().DurationVar(&counted, "count", 0, "count how often each marker fires, recording them for this long")
	return cmd
}

// countedMarker is a marker of "list --count --json": the marker and
// the events it fired during the count.
type countedMarker struct {
	wire.Marker
	Fired uint64 `json:"fired"`
}

// countFirings records the markers ms, unfiltered, for d and returns
// the events of each: received plus lost, so every firing.
func countFirings(ctx context.Context, a *app, t *target, ms []wire.Marker, d time.Duration) (map[string]uint64, error) {
	req := wire.RecordRequest{Duration: d.String(), Client: "tracemark list --count"}
	for _, m := range ms {
		if len(req.Rules) == wire.MaxRules {
			req.Rules = []wire.Rule{{Pattern: "*"}} // too many to name: all, counted per name anyway
			break
		}
		req.Rules = append(req.Rules, wire.Rule{Pattern: m.Name})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	signals := a.catchSignals(cancel)
	defer signals.release()
	s, err := t.client.Record(ctx, req)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	signals.arm(t, s)
	fmt.Fprintf(a.stderr, "Counting %s of pid %d for %v (Ctrl-C to stop early)\n", count(len(ms), "marker"), s.Hello.PID, d)
	c := newCapture(s, nil)
	runErr := c.run()
	signals.release()
	if err := a.outcome(c, t, runErr, "no counts to show"); err != nil {
		return nil, err
	}
	fired := map[string]uint64{}
	for name, n := range c.counts {
		fired[name] = n
	}
	for _, m := range ms {
		if st, ok := c.markerStats(m.Name); ok {
			fired[m.Name] = max(fired[m.Name], st.Delivered) + st.Discarded
		}
	}
	return fired, nil
}

func printMarkers(a *app, ms []wire.Marker, long bool, fired map[string]uint64, counted time.Duration) {
	if long {
		for _, m := range ms {
			state := markerState(m)
			if m.Refused != "" {
				state = "refused"
			}
			if fired != nil {
				state += fmt.Sprintf(", fired %d in %v", fired[m.Name], counted)
			}
			fmt.Fprintf(a.stdout, "%s  (%s, %s)\n", m.Name, m.Stability, state)
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
	if fired == nil {
		t := newTable(a.stdout, "MARKER", "STABILITY", "STATE", "FIELDS")
		for _, m := range ms {
			t.row(m.Name, m.Stability, markerState(m), fieldList(m.Fields))
		}
		t.flush()
		return
	}
	t := newTable(a.stdout, "MARKER", "STABILITY", "STATE", "FIRED IN "+counted.String(), "FIELDS")
	for _, m := range ms {
		t.row(m.Name, m.Stability, markerState(m), strconv.FormatUint(fired[m.Name], 10), fieldList(m.Fields))
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
		return fmt.Sprintf("on: %s (%s)", count(m.Probes, "probe"), strings.Join(slices.Sorted(slices.Values(m.Sessions)), ","))
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
