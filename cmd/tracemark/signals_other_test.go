//go:build !unix

package main

import (
	"os"
	"syscall"
	"testing"
)

// No stop, continue or user signals here, nor users to switch to: the
// tests that need them skip.

func sigStop(t testing.TB) os.Signal { t.Helper(); t.Skip("no SIGSTOP here"); return nil }
func sigCont(t testing.TB) os.Signal { t.Helper(); t.Skip("no SIGCONT here"); return nil }
func sigUsr1(t testing.TB) os.Signal { t.Helper(); t.Skip("no SIGUSR1 here"); return nil }

func nobodyAttr(t testing.TB) *syscall.SysProcAttr {
	t.Helper()
	t.Skip("no user nobody here")
	return nil
}

// killPID sends sig to process pid, which here can only kill it.
func killPID(pid int, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Signal(sig)
}
