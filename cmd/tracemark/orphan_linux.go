package main

import (
	"os/exec"
	"syscall"
)

// orphanGuard makes the kernel send SIGTERM to the child if tracemark
// dies without stopping it, and puts the child in its own process group:
// Ctrl-C on the terminal is for tracemark, which stops the recording and
// then the child, in that order.
func orphanGuard(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
}

// detach puts a child that is to outlive tracemark in its own session:
// no terminal signals reach it, and nothing tells it when tracemark exits.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}
