//go:build !linux

package rt

import (
	"fmt"
	"runtime"
)

// FastThreadID is false: this system has no thread ids for ThreadID.
const FastThreadID = false

// ThreadID returns 0: CheckThreadID fails on this system.
func ThreadID() int32 { return 0 }

func checkThreadID() error {
	return fmt.Errorf("%w on %s", ErrNoThreadID, runtime.GOOS)
}
