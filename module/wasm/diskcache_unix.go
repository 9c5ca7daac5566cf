//go:build unix

package wasm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// checkPrivateDir refuses a cache directory that is not a directory of
// this user that only this user may write to: another user could swap
// files in it between their verification and their use.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to user %d, not to this process's user %d", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s may be written by other users (mode %v)", dir, fi.Mode().Perm())
	}
	return nil
}

// checkPrivateFile refuses a key file that is not a regular file of this
// user that only this user may read.
func checkPrivateFile(fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("belongs to user %d, not to this process's user %d", st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("may be read or written by other users (mode %v)", fi.Mode().Perm())
	}
	return nil
}

// openNoFollow opens a file for reading, refusing a symbolic link.
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}

// stageEntry puts the entry at path in a compilation's directory, as tmp,
// and returns its bytes, to verify, and a function that releases them.
// tmp is a hard link to the entry, which wazero then reads as it is (the
// entry starts with wazero's file), so that a hit copies nothing: the
// bytes are mapped from tmp, in a directory only this process writes.
// They are the bytes wazero reads if nobody else may change the file: it
// must be this user's and writable only by this user (else another user
// could change it between its verification and its use, or truncate the
// mapping). Where hard links fail (another file system, one without
// them) tmp is a copy. An entry that is not a regular file, is larger
// than max or fails those checks is an error wrapping errCacheEntry; a
// missing one, fs.ErrNotExist.
func stageEntry(path, tmp string, max int64) (b []byte, done func(), err error) {
	if err := os.Link(path, tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		if err := copyEntry(path, tmp, max); err != nil {
			return nil, nil, err
		}
	}
	f, err := openNoFollow(tmp)
	if errors.Is(err, syscall.ELOOP) {
		// A link to a symbolic link.
		return nil, nil, fmt.Errorf("%w: a symbolic link", errCacheEntry)
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > max {
		return nil, nil, fmt.Errorf("%w: not a regular file of at most %d bytes", errCacheEntry, max)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, nil, fmt.Errorf("%w: belongs to user %d", errCacheEntry, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, nil, fmt.Errorf("%w: may be written by other users (mode %v)", errCacheEntry, fi.Mode().Perm())
	}
	if fi.Size() == 0 {
		return nil, func() {}, nil
	}
	b, err = unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { unix.Munmap(b) }, nil
}
