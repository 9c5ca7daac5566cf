//go:build !linux

package main

import "io"

// isTerminal reports false: live refreshing needs a known terminal.
func isTerminal(io.Writer) bool { return false }

// termSize reports the size unknown.
func termSize(io.Writer) (rows, cols int, ok bool) { return 0, 0, false }
