package procfind

import (
	"context"
	"time"

	"github.com/tracemark/tracemark/internal/wire"
)

// PollInterval is how often Watch rescans when nothing wakes it: the
// fallback where inotify is unavailable, and the way it sees processes in
// other mount namespaces, whose socket directories it does not watch.
const PollInterval = 250 * time.Millisecond

// Watch calls found for every agent that Scan finds, first those already
// running and then each new one as it appears, until ctx ends. Each
// process (Key) is reported once. It rescans at once when inotify says
// that something was created in the caller's socket directories (or in
// their parents, before they exist), and every PollInterval in any case.
// found runs on Watch's goroutine.
func Watch(ctx context.Context, o Options, found func(Agent)) {
	seen := map[Key]bool{}
	scan := func() {
		live := map[Key]bool{}
		for _, a := range Scan(o) {
			live[a.Key()] = true
			if !seen[a.Key()] {
				seen[a.Key()] = true
				found(a)
			}
		}
		for k := range seen {
			if !live[k] && !wire.ProcessAlive(k.PID) {
				delete(seen, k) // gone: forget it, the pid may come back
			}
		}
	}
	wake := make(chan struct{}, 1)
	if stop := notify(ctx, wake); stop != nil {
		defer stop()
	}
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		scan()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
	}
}
