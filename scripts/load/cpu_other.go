//go:build !unix

package main

import "time"

// selfCPU: no rusage here; the CPU time is reported as 0.
func selfCPU() time.Duration { return 0 }
