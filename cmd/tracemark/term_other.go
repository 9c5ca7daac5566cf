//go:build !linux

package main

import "io"

// isTerminal reports false: live refreshing needs a known terminal.
func isTerminal(io.Writer) bool { return false }
