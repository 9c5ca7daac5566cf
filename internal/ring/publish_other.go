//go:build !amd64 || race

package ring

import "sync/atomic"

// publish stores v with (at least) release ordering; see publish_amd64.go.
// Elsewhere, and for the race detector, which must see the store as
// synchronising, it is an atomic store.
func publish(a *atomic.Uint64, v uint64) { a.Store(v) }
