//go:build unix

package wasm

import (
	"os"
	"syscall"
)

// quit ends a test process with SIGQUIT, which makes it print its
// goroutines.
func quit(p *os.Process) error { return p.Signal(syscall.SIGQUIT) }
