//go:build unix

package main

import (
	"os"
	"syscall"
)

// sigSnapshot is the signal that makes the daemon take a snapshot of
// every session.
var sigSnapshot os.Signal = syscall.SIGUSR1
