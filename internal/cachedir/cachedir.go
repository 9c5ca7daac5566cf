// Package cachedir says where tracemark keeps its caches (built modules,
// compiled modules): $TRACEMARK_CACHE_DIR if it is set, else tracemark in
// the user's cache directory. Tests set the variable to a temporary
// directory so that they never write into the user's.
package cachedir

import (
	"os"
	"path/filepath"
)

// Env is the variable that overrides the cache directory.
const Env = "TRACEMARK_CACHE_DIR"

// Dir returns the directory of the cache named sub, without creating it.
func Dir(sub string) (string, error) {
	if d := os.Getenv(Env); d != "" {
		return filepath.Join(d, sub), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "tracemark", sub), nil
}

// ForTests points Env at a new temporary directory, for a TestMain, and
// returns a function that removes it.
func ForTests() (cleanup func(), err error) {
	d, err := os.MkdirTemp("", "tracemark-cache-")
	if err != nil {
		return nil, err
	}
	os.Setenv(Env, d)
	return func() { os.RemoveAll(d) }, nil
}
