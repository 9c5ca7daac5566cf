//go:build unix

package main

import (
	"os"
	"syscall"
	"testing"
)

// The signals and credentials of the tests that need Unix's; elsewhere
// (signals_other_test.go) those tests skip.

func sigStop(testing.TB) os.Signal { return syscall.SIGSTOP }
func sigCont(testing.TB) os.Signal { return syscall.SIGCONT }
func sigUsr1(testing.TB) os.Signal { return syscall.SIGUSR1 }

// nobodyAttr runs a process as user nobody (which needs root).
func nobodyAttr(testing.TB) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}

// killPID sends sig to process pid.
func killPID(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
