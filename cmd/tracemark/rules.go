package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
)

// ruleFlags are the repeatable -e GLOB and --filter EXPR flags. As with
// lttng enable-event --filter, a filter belongs to the -e just before it,
// so that each glob may have its own:
//
//	-e 'http:*' --filter 'status >= 500' -e 'storage:error'
//
// pflag keeps no order between two flags, so both flags append to one list.
type ruleFlags struct{ rules []wire.Rule }

// add registers -e and --filter on cmd.
func (f *ruleFlags) add(cmd *cobra.Command) {
	cmd.Flags().VarP(globValue{f}, "enable", "e", "markers to record: a name or a glob such as 'http:*' (repeatable)")
	cmd.Flags().Var(filterValue{f}, "filter", "keep only events of the -e before it for which this CEL expression over the fields is true, such as 'status >= 500'")
}

// globs returns the -e patterns, in order.
func (f *ruleFlags) globs() []string {
	out := make([]string, len(f.rules))
	for i, r := range f.rules {
		out[i] = r.Pattern
	}
	return out
}

// errFilterFirst is the error of a --filter before any -e.
var errFilterFirst = errors.New("--filter applies to the -e GLOB before it: put it after one, such as -e 'http:*' --filter 'status >= 500'")

type globValue struct{ f *ruleFlags }

func (v globValue) Set(s string) error {
	v.f.rules = append(v.f.rules, wire.Rule{Pattern: s})
	return nil
}
func (v globValue) Type() string   { return "stringArray" }
func (v globValue) String() string { return "[" + strings.Join(v.f.globs(), ",") + "]" }

type filterValue struct{ f *ruleFlags }

func (v filterValue) Set(s string) error {
	n := len(v.f.rules)
	switch {
	case n == 0:
		return errFilterFirst
	case v.f.rules[n-1].Filter != "":
		return fmt.Errorf("-e %s has two filters; combine them with && or ||, or repeat -e %s for the second", v.f.rules[n-1].Pattern, v.f.rules[n-1].Pattern)
	}
	v.f.rules[n-1].Filter = s
	return nil
}
func (v filterValue) Type() string   { return "string" }
func (v filterValue) String() string { return "" }

// warnLeftOut tells which markers the rules leave out because they lack
// a field their filter names, one line per rule; the other markers of
// the glob are recorded.
func warnLeftOut(w io.Writer, rules []wire.RuleInfo) {
	for _, r := range rules {
		if len(r.LeftOut) == 0 {
			continue
		}
		names := make([]string, len(r.LeftOut))
		for i, lo := range r.LeftOut {
			names[i] = clean(lo.Marker) + " (no " + clean(strings.Join(lo.Missing, ", ")) + ")"
		}
		fmt.Fprintf(w, "warning: -e %s --filter %s leaves out the markers without its fields: %s\n",
			shellQuote(clean(r.Pattern)), shellQuote(clean(r.Filter)), strings.Join(names, ", "))
	}
}

// plural picks the singular or plural form for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// shellQuote quotes s for a shell command line, if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
