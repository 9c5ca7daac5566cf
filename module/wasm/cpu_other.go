//go:build !linux

package wasm

// threadClock: no thread CPU clock here; the deadline is wall time.
func threadClock(bool) (uintptr, bool) { return 0, false }

func threadIDsChecked() bool { return false }

func cpuTime(uintptr) int64 { return -1 }

const hasThreadClock = false
