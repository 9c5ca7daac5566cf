//go:build race

package clock

func init() { simScale = 1.0 / 24 } // the race detector makes a simulated day take minutes
