//go:build unix

package wire

import (
	"errors"
	"os"
	"syscall"
)

// signalable reports whether process pid exists, by sending it signal 0.
func signalable(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// FileOwner returns the uid that owns a file, if the system says.
func FileOwner(fi os.FileInfo) (uid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
