//go:build unix

package ctf

import (
	"os/signal"
	"syscall"
)

// hasFileSizeLimit says whether limitFileSize works here.
const hasFileSizeLimit = true

// limitFileSize limits the size of the files this process writes to n
// bytes: writing past it fails with EFBIG (SIGXFSZ, which would kill the
// process, is ignored).
func limitFileSize(n uint64) error {
	signal.Ignore(syscall.SIGXFSZ)
	lim := syscall.Rlimit{Cur: n, Max: n}
	return syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim)
}
