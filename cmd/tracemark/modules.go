package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

// The commands of this file act on the modules of a running process,
// through its agent. Loading at run time is opt-in by the program
// (agentmodules.WithHost); lsmod and taint work with any process.

// notLoading explains a process that does not load modules.
func notLoading(pid int) string {
	return fmt.Sprintf("process %d does not load modules at run time (its program did not opt in with agentmodules.WithHost)", pid)
}

func insmodCmd(a *app) *cobra.Command {
	var (
		pid, policy   string
		force, asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "insmod -p PID FILE.wasm [--force]",
		GroupID: "modules",
		Short:   "Load a module into a running process",
		Long: `Load a WebAssembly module file into a process whose program allows it
(agentmodules.WithHost). The process reads the file itself, with its own
permissions: FILE is made absolute here, and must be readable there.

The module runs in the process's sandbox and defines its markers, which
"tracemark list" then shows beside the program's. It is tainted as it
deserves: P (proprietary licence), O (not from the process's trusted
module directory), E (not signed by a key the process trusts), F
(forced). The process's policy, or --policy for this module, decides
whether the markers of a module with that taint are used; refused
markers stay listed with the reason.

A module built for another host ABI, or without metadata, is refused
unless --force (taint F; under every policy but open its markers are
then refused). A file that is not a module, has malformed metadata, is
not signed by a trusted key when the process requires it, or dies while
initializing is refused: exit code 2. So is a module over the process's
limits on what it compiles (functions, body size, nesting, locals,
br_table targets, table sizes, total compile work), named in the error.
A module of the same name already loaded: exit code 1. If the request
times out (--timeout) while the process compiles the module, the
process stops and loads nothing.`,
		Example: example(
			"tracemark insmod -p 1234 classifier.wasm",
			"tracemark insmod -p myservice ./build/classifier.wasm --policy kernel",
			"tracemark insmod -p 1234 old-abi.wasm --force"),
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			path, err := filepath.Abs(argv[0])
			if err != nil {
				return &usageError{err}
			}
			t, err := a.connect(cmd.Context(), pid)
			if err != nil {
				return err
			}
			ctx, cancel := a.slowRequestCtx(cmd)
			defer cancel()
			mi, err := t.client.Insmod(ctx, wire.InsmodRequest{Path: path, Force: force, Policy: policy})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, mi)
			}
			fmt.Fprintf(a.stdout, "Loaded %s%s into process %d: taint %s, %s, %s\n",
				clean(mi.Name), spaced(clean(mi.Version)), t.pid, dash(mi.Taint), mi.State, count(len(mi.Markers), "marker"))
			printModuleDetails(a, *mi)
			return nil
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "load a module that fails the ABI check (taints it and the process F)")
	cmd.Flags().StringVar(&policy, "policy", "", "policy for this module: strict, kernel, proprietary or open (default: the process's)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func rmmodCmd(a *app) *cobra.Command {
	var (
		pid           string
		force, asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "rmmod -p PID NAME [--force]",
		GroupID: "modules",
		Short:   "Unload a module from a running process",
		Long: `Unload a module from a process: its sandbox is released and its
markers are removed. The taint it brought stays on the process (taint is
sticky: "tracemark taint" still shows it, naming the module).

Without --force, rmmod waits for a running call into the module to end,
and refuses (exit code 1) while probes are connected to the module's
markers: someone is recording them. --force unloads anyway, stops a
running call, and taints the process R if it had to.`,
		Example: example(
			"tracemark rmmod -p 1234 classifier",
			"tracemark rmmod -p 1234 classifier --force"),
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := wire.CheckModuleName(argv[0]); err != nil {
				return &usageError{err}
			}
			t, err := a.connect(cmd.Context(), pid)
			if err != nil {
				return err
			}
			// The process waits up to 70 s for a running call (the
			// module's deadline backstop and 10 s) before it answers
			// that the call is stuck: wait longer than it does.
			ctx, cancel := a.longRequestCtx(cmd, 2*time.Minute)
			defer cancel()
			mi, err := t.client.Rmmod(ctx, argv[0], force)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, mi)
			}
			fmt.Fprintf(a.stdout, "Unloaded %s%s from process %d: %s removed; module taint %s (stays on the process)\n",
				clean(mi.Name), spaced(clean(mi.Version)), t.pid, count(len(mi.Markers), "marker"), dash(mi.Taint))
			return nil
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "unload even while recorded or in a call (taints the process R if so)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func lsmodCmd(a *app) *cobra.Command {
	var (
		pid           string
		asJSON, quiet bool
	)
	cmd := &cobra.Command{
		Use:     "lsmod -p PID",
		GroupID: "modules",
		Short:   "List the modules loaded in a process",
		Long: `List the WebAssembly modules loaded in a process, like lsmod(8): name,
version, licence, signer, taint letters, state, markers and counters
(calls into the module, events delivered to probes, events dropped over
the module's budget, errors), then each module's markers with their
formats, and why they are refused if they are.

States: live (its markers are used), refused (loaded and callable, but
the policy refuses the markers of a module with its taint), dead (it
trapped or overran its deadline; unload it with rmmod).

Taint letters, per module (tracemark taint explains the process's):
  P proprietary licence  F force-loaded  R force-unloaded  U set by the user
  D died  W broke the ABI  O out-of-tree  E unsigned or untrusted signer
  L overran its CPU deadline`,
		Example: example(
			"tracemark lsmod -p 1234",
			"tracemark lsmod -p 1234 --json | jq '.modules[] | {name, taint, state}'"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, t, err := call(a, cmd.Context(), pid, (*client.Client).Modules)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, list)
			}
			switch {
			case !list.Loading:
				fmt.Fprintln(a.stderr, notLoading(t.pid))
			case len(list.Modules) == 0:
				fmt.Fprintf(a.stderr, "no module loaded in process %d (tracemark insmod loads one)\n", t.pid)
			default:
				printModules(a, list.Modules, quiet)
			}
			if !quiet {
				how := "policy " + list.Policy
				if !list.Loading {
					how = "no run-time loading"
				}
				fmt.Fprintf(a.stdout, "Process %d taint: %s (%s; tracemark taint -p %d explains)\n", t.pid, dash(list.Taint), how, t.pid)
			}
			return nil
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only the table of modules")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printModules(a *app, ms []wire.ModuleInfo, quiet bool) {
	t := newTable(a.stdout, "MODULE", "VERSION", "LICENSE", "SIGNER", "TAINT", "STATE", "MARKERS", "CALLS", "EVENTS", "DROPPED", "ERRORS")
	for _, m := range ms {
		lic := m.License
		if lic == "" {
			lic = "(none)"
		}
		t.row(clean(m.Name), dash(clean(m.Version)), clean(lic), clean(m.Signer), dash(m.Taint), m.State,
			strconv.Itoa(len(m.Markers)), u64(m.Counters.Calls), u64(m.Counters.Delivered), u64(m.Counters.Dropped), u64(m.Counters.Errors))
	}
	t.flush()
	if quiet {
		return
	}
	for _, m := range ms {
		fmt.Fprintf(a.stdout, "\n%s:\n", clean(m.Name))
		printModuleDetails(a, m)
	}
	fmt.Fprintln(a.stdout)
}

// printModuleDetails prints a module's markers and what else an operator
// needs to know about it, indented.
func printModuleDetails(a *app, m wire.ModuleInfo) {
	t := newTable(a.stdout)
	for _, mk := range m.Markers {
		state := "off"
		switch {
		case mk.Refused != "":
			state = "refused"
		case mk.Probes > 0:
			state = "on: " + count(mk.Probes, "probe")
		}
		t.row("  "+clean(mk.Name), dash(clean(mk.Format)), state)
	}
	t.flush()
	if m.Refused != "" {
		fmt.Fprintf(a.stdout, "  markers refused: %s\n", cleanReason(m.Refused))
	}
	if m.Forced != "" {
		fmt.Fprintf(a.stdout, "  force-loaded: %s\n", clean(m.Forced))
	}
	if m.LastError != "" {
		fmt.Fprintf(a.stdout, "  last error: %s\n", cleanReason(m.LastError))
	}
	if m.Path != "" {
		fmt.Fprintf(a.stdout, "  file: %s\n", clean(m.Path))
	}
}

func taintCmd(a *app) *cobra.Command {
	var (
		pid    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "taint -p PID",
		GroupID: "modules",
		Short:   "Explain the taint letters of a process",
		Long: `Explain why a process is tainted, like the kernel's "Tainted:" line:
each letter with its meaning, which module set it, when and why, then the
taint of each module loaded now. A process carries every flag any module
ever brought: taint is sticky, and stays after the module is unloaded.

The letters, in the kernel's order:
  P  proprietary module loaded: its licence is not GPL-compatible, or it declares none
  F  module force-loaded: its ABI check failed and was overridden
  R  module force-unloaded while it was in use (probes on its markers) or busy (in a call)
  U  taint set by the user (an operator marked a module)
  D  a module died: it trapped or exited during a call
  W  warning: a module broke the ABI (garbage arguments, bad pointers, unknown markers), or a probe panicked
  O  out-of-tree module loaded: not from the host's trusted module directory
  E  unsigned module loaded, or signed by a key the host does not trust, or with a bad signature
  L  a module call overran its CPU deadline and the module was killed`,
		Example: example(
			"tracemark taint -p 1234",
			"tracemark taint -p 1234 --json | jq -r .taint"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, t, err := call(a, cmd.Context(), pid, (*client.Client).Taint)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, rep)
			}
			printTaint(a, t.pid, rep)
			return nil
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printTaint(a *app, pid int, rep *wire.TaintReport) {
	w := a.stdout
	if rep.Taint == "" {
		fmt.Fprintf(w, "Process %d is not tainted.\n", pid)
	} else {
		fmt.Fprintf(w, "Process %d tainted: %s\n", pid, rep.Taint)
		for _, f := range rep.Flags {
			fmt.Fprintf(w, "  %s  %s\n", f.Letter, clean(f.Meaning))
			for _, r := range f.Records {
				who := r.Module
				if who == "" {
					who = "-"
				}
				fmt.Fprintf(w, "       %s  %s: %s\n", r.Time.Local().Format(time.DateTime), clean(who), cleanReason(r.Reason))
			}
		}
	}
	switch {
	case !rep.Loading:
		fmt.Fprintln(w, strings.ToUpper(notLoading(pid)[:1])+notLoading(pid)[1:]+".")
	case len(rep.Modules) == 0:
		fmt.Fprintln(w, "No module is loaded now.")
	default:
		fmt.Fprintln(w, "Modules loaded now:")
		t := newTable(w)
		for _, m := range rep.Modules {
			t.row("  "+clean(m.Name), dash(m.Taint), m.State)
		}
		t.flush()
	}
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// slowRequestCtx bounds a request that may take long in the process,
// such as compiling a module: --timeout if given, else at least a minute.
func (a *app) slowRequestCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return a.longRequestCtx(cmd, time.Minute)
}

// longRequestCtx bounds a request that may take long in the process:
// --timeout if the user gave it, else at least floor (four times floor
// with the race detector, which slows compiling a module tenfold).
func (a *app) longRequestCtx(cmd *cobra.Command, floor time.Duration) (context.Context, context.CancelFunc) {
	f := cmd.Flag("timeout")
	return context.WithTimeout(cmd.Context(), a.atLeast(f != nil && f.Changed, floor))
}

// atLeast is the timeout of a long request: the request timeout if the
// user gave it, else at least floor (four times floor with the race
// detector).
func (a *app) atLeast(given bool, floor time.Duration) time.Duration {
	if given {
		return a.timeout
	}
	return max(a.timeout, floor*raceSlowdown)
}
