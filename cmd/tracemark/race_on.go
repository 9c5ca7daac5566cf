//go:build race

package main

// raceSlowdown scales the bounds of waits on work that the race detector
// slows down ten times or more, compiling a module above all (the demo
// service's start, insmod): a race-built tracemark, as its tests run it,
// waits longer before it calls such work stuck, and still gives up.
const raceSlowdown = 4
