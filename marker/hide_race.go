//go:build race

package marker

// hide lets the Event escape under the race detector, whose pointer checks
// reject the trick in hide.go. Race builds allocate one Event per Fire.
func hide(e *Event) *Event { return e }

const raceEnabled = true
