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
	var lim syscall.Rlimit
	setLimit(&lim.Cur, n)
	setLimit(&lim.Max, n)
	return syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim)
}

// setLimit sets a field of syscall.Rlimit, a uint64 on Linux and an int64
// on the BSDs.
func setLimit[T int64 | uint64](f *T, n uint64) { *f = T(n) }
