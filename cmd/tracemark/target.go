package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

// target is a process the CLI talks to.
type target struct {
	pid    int // 0 if only a socket was given and its name says nothing
	client *client.Client
}

// pidFlag adds the -p flag to cmd. It may be given once: a second -p is
// a usage error rather than silently the one used.
func pidFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().VarP(&pidValue{p: p}, "pid", "p", "the process: a pid, or a program name that only one instrumented process has")
}

type pidValue struct {
	p   *string
	set bool
}

func (v *pidValue) Set(s string) error {
	if v.set && s != *v.p { // the same twice says nothing ambiguous (and cobra's completion parses twice)
		return fmt.Errorf("given twice (%s, then %s): one process at a time", *v.p, s)
	}
	*v.p, v.set = s, true
	return nil
}
func (v *pidValue) Type() string   { return "string" }
func (v *pidValue) String() string { return *v.p }

// connect resolves -p (or --socket) to an agent.
func (a *app) connect(ctx context.Context, pidArg string) (*target, error) {
	if a.socket != "" {
		pid, _ := wire.ParseSocketName(lastElem(a.socket))
		return &target{pid: pid, client: client.NewClient(a.socket)}, nil
	}
	if pidArg == "" {
		return nil, usagef("which process? give -p PID (tracemark ps lists them)")
	}
	pid, err := strconv.Atoi(pidArg)
	if err != nil {
		return a.byName(ctx, pidArg)
	}
	if pid <= 0 {
		return nil, usagef("-p %s: not a pid", pidArg)
	}
	sock, err := client.FindSocket(pid)
	if err != nil {
		return nil, err
	}
	return &target{pid: pid, client: client.NewClient(sock)}, nil
}

func lastElem(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

// byName finds the one instrumented process running program name.
func (a *app) byName(ctx context.Context, name string) (*target, error) {
	var matches []processInfo
	for _, p := range a.discover(ctx) {
		if p.err == nil && p.info.Program == name {
			matches = append(matches, p)
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("%w: no instrumented process runs a program named %q (tracemark ps lists them)", client.ErrNoAgent, name)
	case 1:
		return &target{pid: matches[0].pid, client: client.NewClient(matches[0].socket)}, nil
	}
	pids := make([]string, len(matches))
	for i, m := range matches {
		pids[i] = strconv.Itoa(m.pid)
	}
	return nil, usagef("-p %s is ambiguous: processes %s run it; give a pid", name, strings.Join(pids, ", "))
}

// processInfo is an agent found by discovery, with its answer.
type processInfo struct {
	pid    int
	socket string
	info   *wire.Info
	err    error
}

// discover asks every agent of this user for its info, concurrently. It
// removes the sockets that dead processes left behind on the way.
func (a *app) discover(ctx context.Context) []processInfo {
	client.RemoveStale()
	eps := client.Discover()
	out := make([]processInfo, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Go(func() {
			c := client.NewClient(ep.Socket)
			defer c.Close()
			ictx, cancel := context.WithTimeout(ctx, min(a.timeout, 2*time.Second))
			defer cancel()
			info, err := c.Info(ictx)
			out[i] = processInfo{pid: ep.PID, socket: ep.Socket, info: info, err: err}
		})
	}
	wg.Wait()
	return slices.DeleteFunc(out, func(p processInfo) bool { return p.err != nil && refused(p.err) })
}

// refused reports a socket nobody listens on: a live process reusing
// the pid of a dead one, or an agent that just closed.
func refused(err error) bool {
	return strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such file")
}

// requestCtx bounds a request that is not a stream.
func (a *app) requestCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.timeout)
}

// call connects to the process of -p and makes one request, under the
// request timeout. Method expressions such as (*client.Client).Sessions fit
// req as they are.
func call[T any](a *app, ctx context.Context, pid string, req func(*client.Client, context.Context) (T, error)) (T, *target, error) {
	var zero T
	t, err := a.connect(ctx, pid)
	if err != nil {
		return zero, nil, err
	}
	rctx, cancel := a.requestCtx(ctx)
	defer cancel()
	out, err := req(t.client, rctx)
	return out, t, err
}
