//go:build !unix

package wire

import "os"

// signalable reports whether process pid exists: where there are no
// signals, whether it can be found (on Windows, opened).
func signalable(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}

// FileOwner returns the uid that owns a file, if the system says: not
// here.
func FileOwner(os.FileInfo) (uid int, ok bool) { return 0, false }
