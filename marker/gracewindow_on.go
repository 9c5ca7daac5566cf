//go:build tracemark_gracetest

package marker

import (
	"runtime"
	"sync/atomic"
)

// widenGraceWindow makes every reader yield between loading the epoch and
// counting itself in (test builds with -tags tracemark_gracetest only), a
// varying number of times so that late readers land at every point of the
// writer's Unregister/Register sequence.
const widenGraceWindow = true

var graceWindowTurn atomic.Uint32

func graceWindow() {
	for range graceWindowTurn.Add(1) % 8 {
		runtime.Gosched()
	}
}
