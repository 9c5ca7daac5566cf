//go:build !linux

package procfind

import "context"

// notify: no inotify here; Watch polls.
func notify(context.Context, chan<- struct{}) (stop func()) { return nil }
