//go:build !unix

package main

import "os"

// sigSnapshot: there is no SIGUSR1 here; the daemon's snapshots are taken
// on request only.
var sigSnapshot os.Signal
