package agent_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/agent"
	"github.com/tracemark/tracemark/internal/cachedir"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

func TestSocketFileAndCleanup(t *testing.T) {
	a, c := startAgent(t)
	fi, err := os.Lstat(a.Socket())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want a socket with 0600", fi.Mode())
	}
	if got, want := filepath.Base(a.Socket()), wire.SocketName(os.Getpid()); got != want {
		t.Errorf("socket name = %q, want %q", got, want)
	}
	info, err := c.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.PID != os.Getpid() || info.Protocol != wire.Version || info.Markers < 2 {
		t.Errorf("info = %+v", info)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(a.Socket()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
}

func TestSecondAgentRefused(t *testing.T) {
	a, _ := startAgent(t)
	_, err := agent.Start(agent.WithDir(filepath.Dir(a.Socket())))
	if !errors.Is(err, agent.ErrRunning) {
		t.Fatalf("second Start: %v, want ErrRunning", err)
	}
}

func TestDirPermissions(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		ok      bool
	}{
		{"created", func(*testing.T, string) {}, true},
		{"existing 0700", func(t *testing.T, dir string) { mkdir(t, dir, 0o700) }, true},
		{"group readable", func(t *testing.T, dir string) { mkdir(t, dir, 0o750) }, false},
		{"world writable", func(t *testing.T, dir string) { mkdir(t, dir, 0o777) }, false},
		{"symlink", func(t *testing.T, dir string) {
			real := dir + "-real"
			mkdir(t, real, 0o700)
			if err := os.Symlink(real, dir); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"file", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"other owner", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a directory away")
			}
			mkdir(t, dir, 0o700)
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(shortDir(t), "s")
			tt.prepare(t, dir)
			a, err := agent.Start(agent.WithDir(dir))
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				a.Close()
				fi, err := os.Stat(dir)
				if err != nil || fi.Mode().Perm() != 0o700 {
					t.Errorf("directory mode = %v, %v; want 0700", fi.Mode(), err)
				}
				return
			}
			if err == nil {
				a.Close()
				t.Fatal("Start accepted an unsafe directory")
			}
			t.Logf("refused: %v", err)
		})
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // despite the umask
		t.Fatal(err)
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// leaveSocket creates a socket file that nobody listens on.
func leaveSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
}

func TestStaleSockets(t *testing.T) {
	xdg := shortDir(t)
	t.Setenv(wire.EnvRuntimeDir, xdg)
	dir := filepath.Join(xdg, "tracemark")
	mkdir(t, dir, 0o700)
	dead := filepath.Join(dir, wire.SocketName(deadPID(t)))
	leaveSocket(t, dead)
	// A live process whose socket is not (or no longer) served: only
	// the process's own agent may remove it.
	live := filepath.Join(dir, wire.SocketName(os.Getppid()))
	leaveSocket(t, live)
	unrelated := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(unrelated, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	// Before any agent runs, discovery (tracemark ps) ignores the dead.
	for _, e := range client.Discover() {
		if e.Socket == dead {
			t.Errorf("Discover lists the socket of a dead process: %v", e)
		}
	}
	a, err := agent.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if filepath.Dir(a.Socket()) != dir {
		t.Errorf("socket %s not in $XDG_RUNTIME_DIR/tracemark", a.Socket())
	}
	if _, err := os.Lstat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale socket of a dead process not removed: %v", err)
	}
	for _, p := range []string{live, unrelated} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	found := slices.ContainsFunc(client.Discover(), func(e client.Endpoint) bool { return e.PID == os.Getpid() && e.Socket == a.Socket() })
	if !found {
		t.Errorf("Discover does not list the running agent: %v", client.Discover())
	}
}

// TestPeerCredentials connects as user nobody to an agent whose socket
// and directory were opened up on purpose: the file modes no longer
// protect it, the peer credential check must.
func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	a, c := startAgent(t)
	for _, p := range []string{filepath.Dir(filepath.Dir(a.Socket())), filepath.Dir(a.Socket())} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(a.Socket(), 0o666); err != nil {
		t.Fatal(err)
	}
	out := runAsNobody(t, "connect", a.Socket())
	if !strings.Contains(out, "403") || !strings.Contains(out, `"code":"forbidden"`) {
		t.Errorf("nobody's client got %q, want a 403 forbidden answer", out)
	}
	if a.Refused() != 1 {
		t.Errorf("Refused() = %d, want 1", a.Refused())
	}
	// The owner is still served, and sees the refusal.
	info, err := c.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.RefusedPeers != 1 {
		t.Errorf("info.RefusedPeers = %d, want 1", info.RefusedPeers)
	}
}

// runAsNobody runs this test binary as user nobody in the given helper
// role and returns its output. The binary is linked where nobody may
// execute it (go test builds it in a private directory).
func runAsNobody(t *testing.T, role string, args ...string) string {
	t.Helper()
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A hard link, so that no file open for writing can make the exec
	// fail with "text file busy"; a copy across file systems.
	exe := filepath.Join(dir, "agent.test")
	if os.Link(os.Args[0], exe) != nil {
		self, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe, self, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+role, "GORACE=atexit_sleep_ms=0")
	asNobody(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v\n%s", err, out)
	}
	return string(out)
}

const helperEnv = "TRACEMARK_AGENT_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		// Caches in a temporary directory, never in the user's.
		cleanup, err := cachedir.ForTests()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		code := m.Run()
		cleanup()
		os.Exit(code)
	case "connect":
		os.Exit(helperConnect(os.Args[1]))
	}
	os.Exit(2)
}

// helperConnect sends GET /v1/info on a raw connection and prints the
// answer.
func helperConnect(socket string) int {
	c, err := net.Dial("unix", socket)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		fmt.Println("read:", err)
		return 1
	}
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	fmt.Println(resp.StatusCode, string(body[:n]))
	return 0
}
