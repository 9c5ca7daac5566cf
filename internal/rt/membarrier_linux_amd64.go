package rt

import "syscall"

const (
	sysMembarrier                  = 324
	membarrierCmdQuery             = 0
	membarrierPrivateExpedited     = 1 << 3
	membarrierRegisterPrivateExped = 1 << 4
)

// RegisterMembarrier registers the process for Membarrier and reports
// whether it may call it: the kernel must support the private expedited
// command (Linux 4.14). Call it once, before the first Membarrier.
func RegisterMembarrier() bool {
	mask, _, errno := syscall.RawSyscall(sysMembarrier, membarrierCmdQuery, 0, 0)
	if errno != 0 || mask&membarrierPrivateExpedited == 0 {
		return false
	}
	_, _, errno = syscall.RawSyscall(sysMembarrier, membarrierRegisterPrivateExped, 0, 0)
	return errno == 0
}

// Membarrier makes every running thread of the process execute a full
// memory barrier before it returns (membarrier(2),
// MEMBARRIER_CMD_PRIVATE_EXPEDITED): the asymmetric half of a handshake
// whose other half, run often, then needs no barrier of its own. It fails
// only if RegisterMembarrier did not succeed first.
func Membarrier() error {
	if _, _, errno := syscall.Syscall(sysMembarrier, membarrierPrivateExpedited, 0, 0); errno != 0 {
		return errno
	}
	return nil
}
