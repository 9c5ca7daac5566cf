//go:build !race

package main

// raceSlowdown scales the bounds of waits on work that the race detector
// slows down (see race_on.go): 1 without it.
const raceSlowdown = 1
