//go:build linux && !(amd64 || arm64)

package rt

import "syscall"

// FastThreadID says that ThreadID calls gettid: this port does not read
// the runtime's M.
const FastThreadID = false

// ThreadID returns the kernel's id of the calling thread: gettid(2), a
// system call on this port. The goroutine must stay on its thread
// meanwhile (Pin or LockOSThread).
func ThreadID() int32 { return int32(syscall.Gettid()) }

func checkThreadID() error { return nil }
