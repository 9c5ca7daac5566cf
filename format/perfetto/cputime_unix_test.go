//go:build unix

package perfetto_test

import "syscall"

// cpuTime returns the CPU time the process has used, in ns: benchmarks
// report it per operation as well as wall time, which on a loaded machine
// counts the time other processes take.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
