//go:build !(linux && amd64)

package rt

import "errors"

// RegisterMembarrier reports false: this port has no membarrier system
// call wired up.
func RegisterMembarrier() bool { return false }

// Membarrier fails: see RegisterMembarrier.
func Membarrier() error { return errors.ErrUnsupported }
