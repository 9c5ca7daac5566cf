package wire

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// EnvRuntimeDir is the variable naming the per-user runtime directory
// (XDG base directory specification).
const EnvRuntimeDir = "XDG_RUNTIME_DIR"

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

// SocketDirsOf returns the socket directories that the agents of user uid
// use when started with XDG_RUNTIME_DIR set to xdg (or empty), in the
// order SocketDirs gives them: for discovery across users and mount
// namespaces, where the caller resolves the paths in another root.
func SocketDirsOf(xdg string, uid int) []string { return socketDirs(xdg, uid) }

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
	return signalable(pid)
}
