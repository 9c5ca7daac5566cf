package client

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tracemark/tracemark/internal/wire"
)

// EnvSocket, when set, names the socket the CLI talks to, bypassing
// discovery.
const EnvSocket = "TRACEMARK_SOCKET"

// ErrNoAgent is wrapped by errors about a process without a reachable
// agent socket.
var ErrNoAgent = errors.New("no tracemark agent")

// RemoveStale removes, from this user's socket directories, the sockets
// of processes that no longer exist: a program that exits without closing
// its agent (as one started by package agent/autostart does) leaves its
// socket behind. It returns the paths removed. Only files named like agent
// sockets, that are sockets, are touched; a live process's socket never is.
func RemoveStale() []string {
	var out []string
	for _, dir := range wire.SocketDirs() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			pid, ok := wire.ParseSocketName(e.Name())
			if !ok || e.Type()&os.ModeSocket == 0 || wire.ProcessAlive(pid) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if os.Remove(path) == nil {
				out = append(out, path)
			}
		}
	}
	return out
}

// Endpoint is an agent socket found by Discover.
type Endpoint struct {
	PID    int
	Socket string
}

// Discover returns the sockets of this user's live processes, in pid
// order. Sockets of dead processes are skipped (their agents are gone;
// the next agent to start removes them).
func Discover() []Endpoint {
	var out []Endpoint
	seen := map[int]bool{}
	for _, dir := range wire.SocketDirs() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			pid, ok := wire.ParseSocketName(e.Name())
			if !ok || seen[pid] || e.Type()&os.ModeSocket == 0 || !wire.ProcessAlive(pid) {
				continue
			}
			seen[pid] = true
			out = append(out, Endpoint{PID: pid, Socket: filepath.Join(dir, e.Name())})
		}
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return a.PID - b.PID })
	return out
}

// FindSocket returns the socket of process pid: in this user's socket
// directories or, for root, in those of the process's owner.
func FindSocket(pid int) (string, error) {
	if !wire.ProcessAlive(pid) {
		return "", fmt.Errorf("%w: process %d does not exist", ErrNoAgent, pid)
	}
	dirs := wire.SocketDirs()
	if os.Geteuid() == 0 {
		for _, d := range ownerDirs(pid) {
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, wire.SocketName(pid))
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w in process %d: no socket %s in %s (is it instrumented with agent.Start, or started with TRACEMARK_AGENT=1?)",
		ErrNoAgent, pid, wire.SocketName(pid), strings.Join(dirs, " or "))
}

// ownerDirs returns the socket directories of the user owning pid, for
// root: from the process's own XDG_RUNTIME_DIR, then the defaults.
func ownerDirs(pid int) []string {
	fi, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		return nil
	}
	uid, ok := wire.FileOwner(fi)
	if !ok {
		return nil
	}
	dirs := wire.SocketDirsOf(processEnv(pid, wire.EnvRuntimeDir), uid)
	return append(dirs, wire.SocketDirsOf(fmt.Sprintf("/run/user/%d", uid), uid)[0])
}

// processEnv returns a variable of another process's initial environment.
func processEnv(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(key+"=")); ok {
			return string(v)
		}
	}
	return ""
}
