package main

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
)

// addCompletions gives the flags of every command their shell completion
// (cobra's completion functions, used by "tracemark completion SHELL"):
// -p completes to the pids and program names of instrumented processes,
// -e to the marker names (and provider globs) of the -p process, --by and
// the other field flags to those markers' fields, -s to its sessions, and
// the enumerated flags to their values.
func addCompletions(a *app, root *cobra.Command) {
	fixed := map[string][]string{
		"to":       {"perfetto\tChrome trace JSON for ui.perfetto.dev", "text\tone line per event", "jsonl\tJSON Lines"},
		"mode":     {"discard\tkeep the oldest events when full", "overwrite\tkeep the newest (flight recorder)"},
		"progress": {"auto", "live", "plain", "none"},
		"policy":   {"strict", "kernel", "proprietary", "open"},
	}
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		for name, values := range fixed {
			if cmd.Flags().Lookup(name) != nil {
				_ = cmd.RegisterFlagCompletionFunc(name, func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
					return filterPrefix(slices.Clone(values), prefix), cobra.ShellCompDirectiveNoFileComp
				})
			}
		}
		if cmd.Flags().Lookup("pid") != nil {
			_ = cmd.RegisterFlagCompletionFunc("pid", a.completePID)
		}
		if cmd.Flags().Lookup("enable") != nil {
			_ = cmd.RegisterFlagCompletionFunc("enable", a.completeMarkers)
		}
		for _, f := range []string{"by", "hist", "value", "lhist"} {
			if cmd.Flags().Lookup(f) != nil {
				_ = cmd.RegisterFlagCompletionFunc(f, a.completeFields)
			}
		}
		if cmd.Flags().Lookup("session") != nil && cmd.Name() != "enable" {
			_ = cmd.RegisterFlagCompletionFunc("session", a.completeSessions)
		}
		for _, c := range cmd.Commands() {
			walk(c)
		}
	}
	walk(root)
}

// completionTimeout bounds the requests of a completion: a shell waits.
const completionTimeout = time.Second

func (a *app) completePID(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	var out, names []string
	for _, p := range a.discover(cmd.Context()) {
		if p.err != nil {
			continue
		}
		prog := clean(p.info.Program)
		out = append(out, strconv.Itoa(p.pid)+"\t"+prog)
		if !slices.Contains(names, prog) {
			names = append(names, prog)
		}
	}
	for _, n := range names {
		out = append(out, n+"\tprogram name")
	}
	return filterPrefix(out, prefix), cobra.ShellCompDirectiveNoFileComp
}

// completionMarkers returns the markers of the -p process given so far.
func (a *app) completionMarkers(cmd *cobra.Command) []wire.Marker {
	pid, _ := cmd.Flags().GetString("pid")
	if pid == "" && a.socket == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	t, err := a.connect(ctx, pid)
	if err != nil {
		return nil
	}
	defer t.client.Close()
	ms, err := t.client.Markers(ctx, "")
	if err != nil {
		return nil
	}
	return ms
}

func (a *app) completeMarkers(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, m := range a.completionMarkers(cmd) {
		if g := m.Provider + ":*"; !slices.Contains(out, g) {
			out = append(out, g)
		}
		out = append(out, m.Name+"\t"+clean(fieldList(m.Fields)))
	}
	return filterPrefix(out, prefix), cobra.ShellCompDirectiveNoFileComp
}

func (a *app) completeFields(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	globs, _ := cmd.Flags().GetStringArray("enable") // -e given so far
	// --by a,b: complete the last field of the list.
	head := ""
	if i := strings.LastIndexByte(prefix, ','); i >= 0 && cmd.Flags().Lookup("by") != nil {
		head, prefix = prefix[:i+1], prefix[i+1:]
	}
	var out []string
	for _, m := range a.completionMarkers(cmd) {
		if len(globs) > 0 && !matchesAny(globs, m.Name) {
			continue
		}
		for _, f := range m.Fields {
			if c := head + f.Name + "\t" + f.Kind; !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return filterPrefix(out, head+prefix), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

func (a *app) completeSessions(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	pid, _ := cmd.Flags().GetString("pid")
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	t, err := a.connect(ctx, pid)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer t.client.Close()
	list, err := t.client.Sessions(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, s := range list {
		if !s.Ephemeral {
			out = append(out, s.Name+"\t"+s.Mode)
		}
	}
	return filterPrefix(out, prefix), cobra.ShellCompDirectiveNoFileComp
}

// filterPrefix keeps the candidates (with optional "\tdescription") that
// start with prefix.
func filterPrefix(cands []string, prefix string) []string {
	return slices.DeleteFunc(cands, func(c string) bool { return !strings.HasPrefix(c, prefix) })
}
