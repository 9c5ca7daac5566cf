package procfind

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tracemark/tracemark/internal/wire"
)

func TestContainerName(t *testing.T) {
	id := "4f2d3c1b0a99887766554433221100ffeeddccbbaa0099887766554433221100"
	for in, want := range map[string]string{
		"/system.slice/docker-" + id + ".scope": id[:12],
		"/kubepods/besteffort/pod1/" + id:       id[:12],
		"/user.slice/user-1000.slice":           "/user.slice/user-1000.slice",
	} {
		if got := ContainerName(in); got != want {
			t.Errorf("ContainerName(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeProc writes the files procfind reads for one process.
func fakeProc(t *testing.T, root string, pid int, status, stat, cgroup string) {
	t.Helper()
	d := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"status": status, "stat": stat, "cgroup": cgroup} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProcFiles(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 4242, "Name:\tapp\nNSpid:\t4242\t17\t1\n",
		"4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10\n",
		"12:cpu:/v1path\n0::/system.slice/docker-"+"4f2d3c1b0a99887766554433221100ffeeddccbbaa0099887766554433221100.scope\n")
	if got := innerPID(filepath.Join(root, "4242"), 4242); got != 1 {
		t.Errorf("innerPID = %d, want 1 (the last NSpid entry)", got)
	}
	if got, err := startTime(root, 4242); err != nil || got != 987654 {
		t.Errorf("startTime = %d, %v; want 987654", got, err)
	}
	if got := container(root, 4242, "/user.slice"); got != "4f2d3c1b0a99" {
		t.Errorf("container = %q", got)
	}
	if got := container(root, 4242, cgroupPath(root, "4242")); got != "" {
		t.Errorf("container of a process in the caller's cgroup = %q, want empty", got)
	}
	if got := innerPID(filepath.Join(root, "nope"), 7); got != 7 {
		t.Errorf("innerPID without status = %d, want the pid itself", got)
	}
}

// TestWatchSeesNewSocket: an agent socket created after Watch started is
// reported, once, without waiting for the poll when inotify works.
func TestWatchSeesNewSocket(t *testing.T) {
	xdg, err := os.MkdirTemp("", "pfw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(xdg) })
	t.Setenv(wire.EnvRuntimeDir, xdg)
	ctx, cancel := context.WithCancel(context.Background())
	found := make(chan Agent, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, Options{}, func(a Agent) { found <- a })
	}()
	defer func() { cancel(); <-done }()
	// The socket directory does not exist yet: Watch watches its parent.
	dir := filepath.Join(xdg, "tracemark")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, wire.SocketName(os.Getpid()))
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// As root, Watch also finds the agents of other processes (tests of
	// other packages running beside this one): only ours is checked.
	ours := func() (Agent, bool) {
		for {
			select {
			case a := <-found:
				if a.Socket == sock {
					return a, true
				}
			case <-time.After(10 * time.Second):
				return Agent{}, false
			}
		}
	}
	a, ok := ours()
	if !ok {
		t.Fatal("Watch did not report the new socket")
	}
	if a.PID != os.Getpid() || a.Start == 0 {
		t.Errorf("found %+v, want pid %d at %s with a start time", a, os.Getpid(), sock)
	}
	deadline := time.After(3 * PollInterval)
	for {
		select {
		case a := <-found:
			if a.Socket == sock {
				t.Errorf("reported twice: %+v", a)
			}
		case <-deadline:
			return
		}
	}
}
