package client

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tracemark/tracemark/internal/wire"
)

// TestDiscoverAndRemoveStale puts a live socket (this process's) and a
// dead process's socket in the socket directory: Discover and FindSocket
// find the live one only, and RemoveStale removes the dead one alone.
func TestDiscoverAndRemoveStale(t *testing.T) {
	xdg, err := os.MkdirTemp("", "tmc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(xdg) })
	t.Setenv(wire.EnvRuntimeDir, xdg)
	dir := filepath.Join(xdg, "tracemark")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	live := filepath.Join(dir, wire.SocketName(os.Getpid()))
	stale := filepath.Join(dir, wire.SocketName(dead))
	for _, p := range []string{live, stale} {
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		t.Cleanup(func() { ln.Close() })
	}
	eps := Discover()
	if !slices.Contains(eps, Endpoint{PID: os.Getpid(), Socket: live}) {
		t.Errorf("Discover = %v, misses %s", eps, live)
	}
	if slices.ContainsFunc(eps, func(e Endpoint) bool { return e.PID == dead }) {
		t.Errorf("Discover = %v, lists the dead process %d", eps, dead)
	}
	if got, err := FindSocket(os.Getpid()); err != nil || got != live {
		t.Errorf("FindSocket(self) = %q, %v; want %s", got, err, live)
	}
	if _, err := FindSocket(dead); !errors.Is(err, ErrNoAgent) {
		t.Errorf("FindSocket(dead) = %v, want ErrNoAgent", err)
	}
	removed := RemoveStale()
	if !slices.Contains(removed, stale) || slices.Contains(removed, live) {
		t.Errorf("RemoveStale = %v, want %s and not %s", removed, stale, live)
	}
	if _, err := os.Lstat(live); err != nil {
		t.Errorf("the live socket is gone: %v", err)
	}
}
