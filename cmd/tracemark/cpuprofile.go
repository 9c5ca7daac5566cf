package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// cpuProfileEnv names the file to write a pprof CPU profile of the whole
// command to. It is for measuring the CLI (scripts/load passes it on), so
// it is an environment variable rather than a documented flag.
const cpuProfileEnv = "TRACEMARK_CPUPROFILE"

// startCPUProfile starts the CPU profile that cpuProfileEnv asks for, if
// any, and returns the function that ends it. A profile that cannot start
// is reported on stderr; the command runs anyway.
func startCPUProfile(stderr io.Writer) (stop func()) {
	path := os.Getenv(cpuProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "tracemark: %s: %v\n", cpuProfileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "tracemark: %s: %v\n", cpuProfileEnv, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "tracemark: %s: %v\n", cpuProfileEnv, err)
		}
	}
}
