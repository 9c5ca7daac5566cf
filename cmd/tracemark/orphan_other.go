//go:build !linux

package main

import "os/exec"

// orphanGuard does nothing: the child also exits when its standard input,
// held by tracemark, closes.
func orphanGuard(*exec.Cmd) {}

// detach leaves the child as it is: without standard input to watch, it
// lives out its lifetime.
func detach(*exec.Cmd) {}
