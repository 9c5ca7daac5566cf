//go:build !unix

package agent_test

import "os/exec"

// asNobody: no users to switch to here; the tests that call it skip
// without root (os.Geteuid is -1).
func asNobody(*exec.Cmd) { panic("no user nobody here") }
