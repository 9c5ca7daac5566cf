//go:build linux

package ctf

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing [off, off+n) of f to
// disk, without waiting for it to finish (the call itself waits only if
// the device's request queue is full).
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE) // a hint: on tmpfs it does nothing
}

// dropWritten drops from the page cache the pages of [off, off+n) of f
// that are on disk; dirty pages and pages being written stay.
func dropWritten(f *os.File, off, n int64) {
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED) // a hint, as above
}
