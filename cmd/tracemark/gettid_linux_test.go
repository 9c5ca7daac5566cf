package main

import "syscall"

// gettid returns the calling thread's id.
func gettid() int { return syscall.Gettid() }
