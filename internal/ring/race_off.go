//go:build !race

package ring

// Without the race detector, the pin needs no annotation; see race_on.go.

func raceAcquire(*shard) {}

func raceRelease(*shard) {}
