//go:build !unix

package wasm

import "os"

// quit ends a test process (without SIGQUIT here: no goroutine dump).
func quit(p *os.Process) error { return p.Kill() }
