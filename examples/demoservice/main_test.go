package demoservice

import (
	"fmt"
	"os"
	"testing"

	"github.com/tracemark/tracemark/internal/cachedir"
)

// TestMain keeps the built plugin and its compiled code out of the user's
// cache directory.
func TestMain(m *testing.M) {
	cleanup, err := cachedir.ForTests()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}
