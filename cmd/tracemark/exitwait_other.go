//go:build !linux

package main

import (
	"time"

	"github.com/tracemark/tracemark/internal/wire"
)

// waitExit reports whether process pid has exited, polling until timeout.
func waitExit(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for wire.ProcessAlive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
