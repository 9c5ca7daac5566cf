//go:build race

package session_test

// traceIDRace: the race detector makes Fire's arguments escape, so the
// allocation test of trace ids skips.
const traceIDRace = true
