package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/procfind"
	"github.com/tracemark/tracemark/internal/wire"
)

// hostProc is an agent found host-wide, with its answer to info.
type hostProc struct {
	procfind.Agent
	info *wire.Info
	err  error
}

// infoOf asks one agent for its info, briefly.
func (a *app) infoOf(ctx context.Context, ag procfind.Agent) hostProc {
	c := client.NewClient(ag.Socket)
	defer c.Close()
	ictx, cancel := context.WithTimeout(ctx, min(a.timeout, 2*time.Second))
	defer cancel()
	info, err := c.Info(ictx)
	return hostProc{Agent: ag, info: info, err: err}
}

// infoOfNew is infoOf for a process the watcher has just found: its
// socket may exist a moment before its agent answers (a unix socket's file
// appears at bind, before listen), and a loaded machine may keep a new
// agent from answering in time, so a failure is tried again, with a
// growing pause, while the process lives, for up to newAgentPatience.
func (a *app) infoOfNew(ctx context.Context, ag procfind.Agent) hostProc {
	deadline := time.Now().Add(newAgentPatience)
	pause := 20 * time.Millisecond
	for {
		p := a.infoOf(ctx, ag)
		if p.err == nil || time.Now().After(deadline) || !wire.ProcessAlive(ag.PID) {
			return p
		}
		select {
		case <-ctx.Done():
			return p
		case <-time.After(pause):
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// newAgentPatience bounds how long a new process's agent may take to
// answer before the watcher gives up on it.
const newAgentPatience = 10 * time.Second

// discoverHost asks every agent the caller may reach on the host, in
// every namespace, for its info, concurrently.
func (a *app) discoverHost(ctx context.Context) []hostProc {
	ags := procfind.Scan(procfind.Options{AllNamespaces: true})
	out := make([]hostProc, len(ags))
	var wg sync.WaitGroup
	for i, ag := range ags {
		wg.Go(func() { out[i] = a.infoOf(ctx, ag) })
	}
	wg.Wait()
	kept := out[:0]
	for _, p := range out {
		if p.err == nil || !refused(p.err) {
			kept = append(kept, p)
		}
	}
	return kept
}

// psAllJSON is an element of `tracemark ps --all --json`.
type psAllJSON struct {
	HostPID   int        `json:"host_pid"`
	PID       int        `json:"pid"`
	Container string     `json:"container,omitempty"`
	Socket    string     `json:"socket"`
	Info      *wire.Info `json:"info,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// psAll is `tracemark ps --all`: every agent of the host the caller may
// reach, with its host pid, its pid in its own namespace and its
// container.
func psAll(ctx context.Context, a *app, asJSON bool) error {
	procs := a.discoverHost(ctx)
	if asJSON {
		out := []psAllJSON{}
		for _, p := range procs {
			j := psAllJSON{HostPID: p.PID, PID: p.NSPID, Container: p.Container, Socket: p.Socket, Info: p.info}
			if p.err != nil {
				j.Error = p.err.Error()
			}
			out = append(out, j)
		}
		return writeJSON(a.stdout, out)
	}
	t := newTable(a.stdout, "HOST-PID", "PID", "PROGRAM", "MARKERS", "ENABLED", "SESSIONS", "RECORDINGS", "CONTAINER", "UP")
	for _, p := range procs {
		if p.err != nil {
			t.row(strconv.Itoa(p.PID), strconv.Itoa(p.NSPID), "?", "-", "-", "-", "-", dash(p.Container), "agent not answering: "+clean(p.err.Error()))
			continue
		}
		i := p.info
		t.row(strconv.Itoa(p.PID), strconv.Itoa(p.NSPID), clean(i.Program), strconv.Itoa(i.Markers), strconv.Itoa(i.Enabled),
			strconv.Itoa(i.Sessions), strconv.Itoa(i.Recordings), dash(clean(p.Container)), since(i.Started))
	}
	t.flush()
	return nil
}

// pidsValue is the -p flag of the recording commands: repeatable, the
// last value also kept alone for the commands that take one process.
type pidsValue struct {
	last *string
	all  *[]string
}

func (v *pidsValue) Set(s string) error {
	*v.all = append(*v.all, s)
	*v.last = s
	return nil
}
func (v *pidsValue) String() string { return *v.last }
func (v *pidsValue) Type() string   { return "string" }

// pidsFlag adds a repeatable -p flag to cmd.
func pidsFlag(cmd *cobra.Command, last *string, all *[]string) {
	cmd.Flags().VarP(&pidsValue{last: last, all: all}, "pid", "p",
		"the process: a pid, or a program name that only one instrumented process has (repeat -p for several, with record)")
}

// selector says which processes a host-wide command takes.
type selector struct {
	all   bool
	glob  string   // --name: program name glob
	pids  []int    // -p PID, host pids
	names []string // -p NAME
}

// multiFlags are the host-wide flags of record (and stream, stats).
type multiFlags struct {
	all     bool
	name    string
	context []string // record only
}

func (m *multiFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&m.all, "all", false, "every instrumented process you may reach on the host (all users for root, containers included), and those that start later")
	cmd.Flags().StringVar(&m.name, "name", "", "the processes whose program name matches this glob, also those that start later")
}

// selector returns the selection, and whether the command is host-wide:
// --all, --name or more than one -p.
func (m *multiFlags) selector(f *recFlags) (selector, bool, error) {
	s := selector{all: m.all, glob: m.name}
	if m.name != "" {
		if _, err := filepath.Match(m.name, ""); err != nil {
			return s, false, usagef("--name %q: %v", m.name, err)
		}
	}
	multi := m.all || m.name != "" || len(f.pids) > 1
	if !multi {
		return s, false, nil
	}
	for _, p := range f.pids {
		if n, err := strconv.Atoi(p); err == nil {
			if n <= 0 {
				return s, false, usagef("-p %s: not a pid", p)
			}
			s.pids = append(s.pids, n)
		} else {
			s.names = append(s.names, p)
		}
	}
	if m.all && (len(f.pids) > 0 || m.name != "") {
		return s, false, usagef("--all takes every process: give no -p or --name with it")
	}
	return s, true, nil
}

// match reports whether the selection takes a process.
func (s selector) match(p hostProc) bool {
	if p.err != nil {
		return false
	}
	if s.all {
		return true
	}
	for _, pid := range s.pids {
		if pid == p.PID {
			return true
		}
	}
	for _, n := range s.names {
		if n == p.info.Program {
			return true
		}
	}
	if s.glob != "" {
		ok, _ := filepath.Match(s.glob, p.info.Program)
		return ok
	}
	return false
}

// watches reports whether processes that start later can match: not
// with pids alone.
func (s selector) watches() bool { return s.all || s.glob != "" || len(s.names) > 0 }

// clockBase is the time base that every trace of a host-wide recording
// shares: CLOCK_MONOTONIC of the host, with one offset to wall-clock time
// measured once by the recorder, under one clock UUID (the boot id, as
// CLOCK_MONOTONIC is a property of the boot), so that Babeltrace merges
// the traces of the directory into one timeline, exactly ordered.
type clockBase struct {
	uuid     [16]byte
	offsetNS int64 // CLOCK_REALTIME - CLOCK_MONOTONIC, in ns
}

func newClockBase() clockBase {
	var b clockBase
	if id, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		if u, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(id)), "-", "")); err == nil && len(u) == 16 {
			copy(b.uuid[:], u)
		}
	}
	if b.uuid == ([16]byte{}) {
		_, _ = rand.Read(b.uuid[:])
	}
	b.offsetNS = monoOffset()
	return b
}

// timensOffset returns how far the monotonic clock of process pid is
// ahead of the host's (a time namespace), from /proc/PID/timens_offsets.
func timensOffset(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/timens_offsets", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && (f[0] == "monotonic" || f[0] == "1") {
			s, _ := strconv.ParseInt(f[1], 10, 64)
			ns, _ := strconv.ParseInt(f[2], 10, 64)
			return s*1e9 + ns
		}
	}
	return 0
}

// clockFor returns the CTF clock of the trace of one process: the shared
// base, less the process's time namespace offset. ok is false if the
// process's clock is not CLOCK_MONOTONIC nanoseconds: its own clock is
// kept then.
func (b clockBase) clockFor(h wire.Hello, hostPID int) (c ctf.Clock, ok bool) {
	c = ctf.Clock{Name: h.Clock.Name, Frequency: h.Clock.Frequency, OffsetSeconds: h.Clock.OffsetSeconds,
		Offset: h.Clock.Offset, Description: h.Clock.Description}
	if h.Clock.Name != "monotonic" || h.Clock.Frequency != 1e9 {
		return c, false
	}
	off := b.offsetNS - timensOffset(hostPID)
	sec, ns := off/1e9, off%1e9
	if ns < 0 {
		sec, ns = sec-1, ns+1e9
	}
	c.OffsetSeconds, c.Offset, c.UUID = sec, uint64(ns), b.uuid
	return c, true
}

// createProcTrace creates the trace of one process of a host-wide
// recording, on the shared clock base.
func createProcTrace(dir string, h wire.Hello, clk ctf.Clock, ag procfind.Agent, ectx *eventContext) (*traceOut, error) {
	env := make(map[string]string, len(h.Env)+2)
	for k, v := range h.Env {
		env[k] = clean(v)
	}
	env["host_pid"] = strconv.Itoa(ag.PID)
	if ag.Container != "" {
		env["container"] = clean(ag.Container)
	}
	info := ctf.TraceInfo{Clock: clk, Env: env}
	if ectx == nil {
		ectx = newEventContext(nil, h) // vtid, if the records carry it
	}
	if err := ectx.check(h); err != nil {
		return nil, err
	}
	ectx.inNamespace(ag.PID, ag.NSPID)
	if ectx != nil {
		info.EventContext = ectx.fields
	}
	w, err := ctf.Create(dir, info)
	if err != nil {
		return nil, err
	}
	return newTraceOut(w, dir, ectx), nil
}

// procDirName names the trace of one process in a host-wide recording
// directory, as LTTng names its per-process traces:
// PROCNAME-PID-YYYYMMDD-HHMMSS (the process's start).
func procDirName(program string, pid int, started time.Time) string {
	prog := fileSafe(program)
	if prog == "" {
		prog = "unknown"
	}
	return fmt.Sprintf("%s-%d-%s", prog, pid, started.Local().Format("20060102-150405"))
}

// sessionsAllJSON is an element of `tracemark sessions --all --json`.
type sessionsAllJSON struct {
	HostPID   int                `json:"host_pid"`
	PID       int                `json:"pid"`
	Program   string             `json:"program"`
	Container string             `json:"container,omitempty"`
	Sessions  []wire.SessionInfo `json:"sessions"`
	Error     string             `json:"error,omitempty"`
}

// sessionsAll is `tracemark sessions --all`: a row per session of every
// process on the host, with who holds it (a command, a daemon session).
func sessionsAll(ctx context.Context, a *app, asJSON bool) error {
	procs := a.discoverHost(ctx)
	out := make([]sessionsAllJSON, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		out[i] = sessionsAllJSON{HostPID: p.PID, PID: p.NSPID, Container: p.Container, Sessions: []wire.SessionInfo{}}
		if p.err != nil {
			out[i].Error = p.err.Error()
			continue
		}
		out[i].Program = p.info.Program
		wg.Go(func() {
			c := client.NewClient(p.Socket)
			defer c.Close()
			rctx, cancel := a.requestCtx(ctx)
			defer cancel()
			list, err := c.Sessions(rctx)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Sessions = list
		})
	}
	wg.Wait()
	if asJSON {
		return writeJSON(a.stdout, out)
	}
	t := newTable(a.stdout, "HOST-PID", "PROGRAM", "SESSION", "BY", "MODE", "STATE", "RECORDED", "LOST", "RULES")
	for _, p := range out {
		if p.Error != "" {
			t.row(strconv.Itoa(p.HostPID), dash(clean(p.Program)), "?", "-", "-", "-", "-", "-", "agent not answering: "+clean(p.Error))
			continue
		}
		for _, s := range p.Sessions {
			by := "enable"
			if s.Ephemeral {
				by = dash(clean(s.Client))
			}
			t.row(strconv.Itoa(p.HostPID), clean(p.Program), clean(s.Name), by, s.Mode, s.State,
				strconv.FormatUint(s.Stats.Recorded, 10), strconv.FormatUint(s.Stats.Discarded, 10), ruleList(s.Rules))
		}
	}
	t.flush()
	return nil
}
