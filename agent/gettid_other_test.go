//go:build !linux

package agent_test

import "testing"

// gettid: there is no gettid here; needGettid skipped the test.
func gettid() int { panic("gettid is Linux's") }

// needGettid skips a test that compares thread ids with gettid where
// there is none.
func needGettid(t testing.TB) {
	t.Helper()
	t.Skip("no gettid to compare thread ids with (Linux only)")
}
