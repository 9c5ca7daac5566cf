//go:build unix

package agent_test

import (
	"os/exec"
	"syscall"
)

// asNobody makes cmd run as user nobody (65534), which needs root.
func asNobody(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}
