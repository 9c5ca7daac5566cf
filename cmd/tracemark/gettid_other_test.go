//go:build !linux

package main

// gettid: thread ids are Linux's; the target's "threads" command, which
// names events by them, is for the Linux-only tests of thread ids.
func gettid() int { panic("gettid is Linux's") }
