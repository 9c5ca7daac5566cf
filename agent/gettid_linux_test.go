package agent_test

import (
	"syscall"
	"testing"
)

// gettid returns the calling thread's id.
func gettid() int { return syscall.Gettid() }

// needGettid skips a test that compares thread ids with gettid where
// there is none.
func needGettid(testing.TB) {}
