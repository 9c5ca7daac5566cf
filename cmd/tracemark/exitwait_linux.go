package main

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/tracemark/tracemark/internal/wire"
)

// waitExit reports whether process pid has exited, waiting up to timeout:
// when its socket closes, a killed process may still be tearing down.
// A pidfd becomes readable when the process exits, zombie or not.
func waitExit(pid int, timeout time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return !wire.ProcessAlive(pid) // no such process, or no pidfd support
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(timeout.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}
