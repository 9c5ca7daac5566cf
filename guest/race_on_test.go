//go:build race && !wasip1

package guest

const raceEnabled = true
