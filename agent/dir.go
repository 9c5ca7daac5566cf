package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tracemark/tracemark/internal/wire"
)

// prepareDir creates dir with mode 0700 if needed and checks that it is a
// real directory (not a symbolic link), owned by this user, that no one
// else may enter or write: in /tmp, another user could have created it
// first to intercept the socket.
func prepareDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating socket directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%w: %s is a symbolic link", ErrUnsafeDir, dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrUnsafeDir, dir)
	}
	if uid, ok := wire.FileOwner(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not %d", ErrUnsafeDir, dir, uid, os.Geteuid())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %#o, want 0700", ErrUnsafeDir, dir, perm)
	}
	return nil
}

// removeStale removes the sockets of dead processes from dir. Only files
// that look like agent sockets are touched.
func removeStale(dir string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := wire.ParseSocketName(e.Name())
		if !ok || e.Type()&os.ModeSocket == 0 || pid == os.Getpid() || wire.ProcessAlive(pid) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err == nil {
			log.Info("removed stale socket", "path", path)
		}
	}
}
