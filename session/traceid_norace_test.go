//go:build !race

package session_test

const traceIDRace = false
