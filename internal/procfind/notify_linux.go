package procfind

import (
	"context"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/tracemark/tracemark/internal/wire"
)

// notify watches the caller's socket directories (or the nearest parent
// that exists) with inotify and signals wake on every creation. It returns
// nil where inotify is not available: Watch then polls.
func notify(ctx context.Context, wake chan<- struct{}) (stop func()) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	const mask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ATTRIB
	// addWatches watches each socket directory, or its nearest existing
	// parent until it exists: after every event, so that a directory
	// created meanwhile is watched from then on.
	addWatches := func() (watched int) {
		for _, d := range wire.SocketDirs() {
			for dir := d; ; dir = filepath.Dir(dir) {
				if _, err := os.Stat(dir); err == nil {
					if _, err := unix.InotifyAddWatch(fd, dir, mask); err == nil {
						watched++
					}
					break
				}
				if dir == "/" || dir == "." {
					break
				}
			}
		}
		return watched
	}
	if addWatches() == 0 {
		unix.Close(fd)
		return nil
	}
	// The reader blocks in read(2); closing the descriptor from stop does
	// not interrupt it on Linux, so it polls with a timeout instead.
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for ctx.Err() == nil {
			n, err := unix.Poll(pfd, 100)
			if err != nil && err != unix.EINTR {
				return
			}
			if n <= 0 {
				continue
			}
			if _, err := unix.Read(fd, buf); err != nil && err != unix.EINTR && err != unix.EAGAIN {
				return
			}
			addWatches()
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	return func() {
		<-done
		unix.Close(fd)
	}
}
