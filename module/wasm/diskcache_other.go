//go:build !unix

package wasm

import (
	"fmt"
	"os"
)

// checkPrivateDir refuses a cache directory that is not a directory.
// Elsewhere than on Unix the directory's permissions are not checked.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// checkPrivateFile refuses a key file that is not a regular file.
func checkPrivateFile(fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	return nil
}

func openNoFollow(path string) (*os.File, error) { return os.Open(path) }

// stageEntry copies the entry at path to tmp, in a compilation's
// directory, and returns its bytes, to verify (see the Unix version,
// which links it instead). An entry that is not a regular file or is
// larger than max is an error wrapping errCacheEntry; a missing one,
// fs.ErrNotExist.
func stageEntry(path, tmp string, max int64) (b []byte, done func(), err error) {
	if err := copyEntry(path, tmp, max); err != nil {
		return nil, nil, err
	}
	b, err = os.ReadFile(tmp)
	if err != nil {
		return nil, nil, err
	}
	return b, func() {}, nil
}
