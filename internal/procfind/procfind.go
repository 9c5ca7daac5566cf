// Package procfind finds the tracemark agents of a host: those of the
// caller's user in its own socket directories and, for root, those of
// every user and of processes in other mount and PID namespaces
// (containers), whose sockets it reaches through /proc/PID/root. Watch
// reports agents as they appear.
package procfind

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

// Agent is an agent socket found on the host.
type Agent struct {
	// PID is the process id on the host (in the caller's PID namespace).
	PID int
	// NSPID is the process id inside its own PID namespace, the one its
	// agent reports and names its socket after; equal to PID outside
	// containers.
	NSPID int
	// Socket is the path to connect to, through /proc/PID/root for a
	// process in another mount namespace.
	Socket string
	// Start is the process start time in clock ticks since boot (field 22
	// of /proc/PID/stat): with PID, it identifies a process even after
	// its pid is reused.
	Start uint64
	// Container is the process's cgroup path when it differs from the
	// caller's (a container or service), shortened to the container id
	// when the path holds one; "" otherwise.
	Container string
	// Foreign is true when the process lives in another mount or PID
	// namespace than the caller.
	Foreign bool
}

// Key identifies a process across pid reuse.
type Key struct {
	PID   int
	Start uint64
}

// Key returns the agent's process key.
func (a Agent) Key() Key { return Key{a.PID, a.Start} }

// Options say where to look.
type Options struct {
	// AllNamespaces makes Scan look at every process of the host (through
	// /proc), not only in the caller's socket directories: other users'
	// for root, and processes in other mount and PID namespaces.
	AllNamespaces bool
	// Proc is the procfs mount, "/proc" if empty (tests use another).
	Proc string
}

func (o Options) proc() string {
	if o.Proc == "" {
		return "/proc"
	}
	return o.Proc
}

// Scan returns the live agents, in host pid order.
func Scan(o Options) []Agent {
	self := selfNS(o.proc())
	found := map[int]Agent{}
	for _, ep := range client.Discover() {
		a := Agent{PID: ep.PID, NSPID: ep.PID, Socket: ep.Socket}
		a.Start, _ = startTime(o.proc(), ep.PID)
		a.Container = container(o.proc(), ep.PID, self.cgroup)
		found[ep.PID] = a
	}
	if o.AllNamespaces {
		entries, _ := os.ReadDir(o.proc())
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid <= 0 {
				continue
			}
			if _, ok := found[pid]; ok {
				continue
			}
			if a, ok := probe(o.proc(), pid, self); ok {
				found[pid] = a
			}
		}
	}
	out := make([]Agent, 0, len(found))
	for _, a := range found {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Agent) int { return a.PID - b.PID })
	return out
}

// nsInfo is what identifies the caller's namespaces and cgroup.
type nsInfo struct {
	mnt, pid, cgroup string
}

func selfNS(proc string) nsInfo {
	mnt, _ := os.Readlink(filepath.Join(proc, "self/ns/mnt"))
	pid, _ := os.Readlink(filepath.Join(proc, "self/ns/pid"))
	return nsInfo{mnt: mnt, pid: pid, cgroup: cgroupPath(proc, "self")}
}

// probe looks for the socket of one process: in its owner's socket
// directories, seen through its root if it lives in another mount
// namespace, under its own pid if it lives in another PID namespace.
func probe(proc string, pid int, self nsInfo) (Agent, bool) {
	base := filepath.Join(proc, strconv.Itoa(pid))
	fi, err := os.Stat(base)
	if err != nil {
		return Agent{}, false
	}
	uid, ok := wire.FileOwner(fi)
	if !ok {
		return Agent{}, false
	}
	if os.Geteuid() != 0 && uid != os.Geteuid() {
		return Agent{}, false // the agent would refuse us anyway
	}
	mnt, _ := os.Readlink(filepath.Join(base, "ns/mnt"))
	pidns, _ := os.Readlink(filepath.Join(base, "ns/pid"))
	foreign := (mnt != "" && mnt != self.mnt) || (pidns != "" && pidns != self.pid)
	nspid := innerPID(base, pid)
	root := ""
	if mnt != "" && mnt != self.mnt {
		root = filepath.Join(base, "root")
	}
	xdg := processEnvAt(base, wire.EnvRuntimeDir)
	dirs := wire.SocketDirsOf(xdg, uid)
	dirs = append(dirs, wire.SocketDirsOf(fmt.Sprintf("/run/user/%d", uid), uid)[0])
	for _, d := range dirs {
		p := filepath.Join(root+"/", d, wire.SocketName(nspid))
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			start, _ := startTime(proc, pid)
			return Agent{PID: pid, NSPID: nspid, Socket: p, Start: start, Foreign: foreign,
				Container: container(proc, pid, self.cgroup)}, true
		}
	}
	return Agent{}, false
}

// innerPID returns the pid of a process in its innermost PID namespace,
// the last entry of the NSpid line of its status file.
func innerPID(base string, pid int) int {
	b, err := os.ReadFile(filepath.Join(base, "status"))
	if err != nil {
		return pid
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if n, err := strconv.Atoi(f[len(f)-1]); err == nil && n > 0 {
					return n
				}
			}
		}
	}
	return pid
}

func processEnvAt(base, key string) string {
	b, err := os.ReadFile(filepath.Join(base, "environ"))
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

// startTime returns field 22 of /proc/PID/stat.
func startTime(proc string, pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("procfind: malformed stat of %d", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After the command: state is field 3, starttime field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("procfind: short stat of %d", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// cgroupPath returns the unified (v2) cgroup path of a process, or the
// first hierarchy's path under cgroup v1.
func cgroupPath(proc, pid string) string {
	b, err := os.ReadFile(filepath.Join(proc, pid, "cgroup"))
	if err != nil {
		return ""
	}
	first := ""
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			return parts[2]
		}
		if first == "" {
			first = parts[2]
		}
	}
	return first
}

var containerID = regexp.MustCompile(`[0-9a-f]{64}`)

// container names the cgroup of pid when it differs from the caller's:
// the container id (12 digits, as docker ps shows it) if the path holds
// one, else the path.
func container(proc string, pid int, self string) string {
	cg := cgroupPath(proc, strconv.Itoa(pid))
	if cg == "" || cg == self {
		return ""
	}
	return ContainerName(cg)
}

// ContainerName shortens a cgroup path to the container id it holds (the
// first 12 of 64 hexadecimal digits, as docker and podman show it), or
// returns the path.
func ContainerName(cgroup string) string {
	if id := containerID.FindString(cgroup); id != "" {
		return id[:12]
	}
	return cgroup
}
