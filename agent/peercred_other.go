//go:build !linux

package agent

import (
	"errors"
	"fmt"
	"net"
)

// supported refuses to start: without SO_PEERCRED the agent cannot tell
// who connects, and an agent that serves anyone is worse than none.
func supported() error {
	return fmt.Errorf("agent: %w: peer credentials are only implemented on Linux", errors.ErrUnsupported)
}

func peerCred(*net.UnixConn) (uid, pid int, err error) {
	return -1, 0, errors.ErrUnsupported
}
