//go:build unix && !netbsd

package main

import "golang.org/x/sys/unix"

// monoOffset measures CLOCK_REALTIME - CLOCK_MONOTONIC: of a few tries,
// the one whose two realtime readings are the closest.
func monoOffset() int64 {
	best, off := int64(-1), int64(0)
	for range 7 {
		var r1, m, r2 unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_REALTIME, &r1)
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &m)
		_ = unix.ClockGettime(unix.CLOCK_REALTIME, &r2)
		d := r2.Nano() - r1.Nano()
		if best < 0 || d < best {
			best, off = d, r1.Nano()+d/2-m.Nano()
		}
	}
	return off
}
