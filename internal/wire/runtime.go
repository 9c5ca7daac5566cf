package wire

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// EnvRuntimeDir is the variable naming the per-user runtime directory
// (XDG base directory specification).
const EnvRuntimeDir = "XDG_RUNTIME_DIR"

// EnvSocket, when set, names the socket the CLI talks to, bypassing
// discovery.
const EnvSocket = "TRACEMARK_SOCKET"

// ErrNoAgent is wrapped by errors about a process without a reachable
// agent socket.
var ErrNoAgent = errors.New("no tracemark agent")

// SocketDir returns the directory in which this user's agents create
// their sockets: $XDG_RUNTIME_DIR/tracemark when XDG_RUNTIME_DIR is an
// absolute path, /tmp/tracemark-UID otherwise.
func SocketDir() string {
	return socketDirs(os.Getenv(EnvRuntimeDir), os.Geteuid())[0]
}

// SocketDirs returns every directory in which this user's agents may have
// created sockets, SocketDir first: a process started with another
// XDG_RUNTIME_DIR (or none) uses the other one.
func SocketDirs() []string {
	return socketDirs(os.Getenv(EnvRuntimeDir), os.Geteuid())
}

func socketDirs(xdg string, uid int) []string {
	tmp := filepath.Join("/tmp", "tracemark-"+strconv.Itoa(uid))
	if filepath.IsAbs(xdg) {
		return []string{filepath.Join(xdg, "tracemark"), tmp}
	}
	return []string{tmp}
}

// SocketName returns the file name of the socket of process pid.
func SocketName(pid int) string { return strconv.Itoa(pid) + ".sock" }

// ParseSocketName returns the pid of a socket file name.
func ParseSocketName(name string) (int, bool) {
	s, ok := strings.CutSuffix(name, ".sock")
	if !ok || s == "" || len(s) > 10 || s[0] == '0' {
		return 0, false
	}
	pid, err := strconv.Atoi(s)
	return pid, err == nil && pid > 0
}

// RemoveStale removes, from this user's socket directories, the sockets
// of processes that no longer exist: a program that exits without closing
// its agent (as one started by package agent/autostart does) leaves its
// socket behind. It returns the paths removed. Only files named like agent
// sockets, that are sockets, are touched; a live process's socket never is.
func RemoveStale() []string {
	var out []string
	for _, dir := range SocketDirs() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			pid, ok := ParseSocketName(e.Name())
			if !ok || e.Type()&os.ModeSocket == 0 || ProcessAlive(pid) {
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
	for _, dir := range SocketDirs() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			pid, ok := ParseSocketName(e.Name())
			if !ok || seen[pid] || e.Type()&os.ModeSocket == 0 || !ProcessAlive(pid) {
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
	if !ProcessAlive(pid) {
		return "", fmt.Errorf("%w: process %d does not exist", ErrNoAgent, pid)
	}
	dirs := SocketDirs()
	if os.Geteuid() == 0 {
		for _, d := range ownerDirs(pid) {
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, SocketName(pid))
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w in process %d: no socket %s in %s (is it instrumented with agent.Start, or started with TRACEMARK_AGENT=1?)",
		ErrNoAgent, pid, SocketName(pid), strings.Join(dirs, " or "))
}

// ownerDirs returns the socket directories of the user owning pid, for
// root: from the process's own XDG_RUNTIME_DIR, then the defaults.
func ownerDirs(pid int) []string {
	fi, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	uid := int(st.Uid)
	dirs := socketDirs(processEnv(pid, EnvRuntimeDir), uid)
	return append(dirs, socketDirs(fmt.Sprintf("/run/user/%d", uid), uid)[0])
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

// ProcessAlive reports whether process pid exists and is not a zombie: a
// process killed with SIGKILL stays a zombie until its parent reaps it,
// but its agent is gone.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		// The state follows the command name in parentheses, which may
		// itself contain parentheses: look after the last one.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
			return b[i+2] != 'Z' && b[i+2] != 'X'
		}
		return true
	}
	if _, perr := os.Stat("/proc/self/stat"); perr == nil {
		return false // procfs works, and has no such process
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
