package procfind

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tracemark/tracemark/internal/wire"
)

// PollInterval is how often Watch rescans when nothing wakes it: the
// fallback where inotify is unavailable, and the way it sees processes in
// other mount namespaces, whose socket directories it does not watch.
const PollInterval = 250 * time.Millisecond

// Watch calls found for every agent that Scan finds, first those already
// running and then each new one as it appears, until ctx ends. Each
// process (Key) is reported once. It rescans at once when inotify says
// that something was created in the caller's socket directories (or in
// their parents, before they exist), and every PollInterval in any case.
// found runs on Watch's goroutine.
func Watch(ctx context.Context, o Options, found func(Agent)) {
	seen := map[Key]bool{}
	scan := func() {
		live := map[Key]bool{}
		for _, a := range Scan(o) {
			live[a.Key()] = true
			if !seen[a.Key()] {
				seen[a.Key()] = true
				found(a)
			}
		}
		for k := range seen {
			if !live[k] && !wire.ProcessAlive(k.PID) {
				delete(seen, k) // gone: forget it, the pid may come back
			}
		}
	}
	wake := make(chan struct{}, 1)
	if stop := notify(ctx, wake); stop != nil {
		defer stop()
	}
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		scan()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
	}
}

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
