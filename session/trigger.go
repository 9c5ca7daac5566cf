package session

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracemark/tracemark/marker"
)

// Trigger takes flight-recorder snapshots when a marker fires, at most
// once per interval, on its own goroutine so that the firing code is not
// delayed.
type Trigger struct {
	probe    *marker.Probe
	every    int64 // ns
	last     atomic.Int64
	kick     chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup
	snapshot func() error

	fired, suppressed, taken, failed atomic.Uint64
	mu                               sync.Mutex
	lastErr                          error
}

// SnapshotOn calls snapshot (typically WriteSnapshot into a new directory)
// when a marker matching pattern fires, for example "app:panic", at most
// once per every. Firings in between are counted as suppressed. Close the
// trigger to stop it.
func (s *Session) SnapshotOn(pattern string, every time.Duration, snapshot func() error) (*Trigger, error) {
	if snapshot == nil {
		return nil, errors.New("session: SnapshotOn needs a snapshot function")
	}
	t := &Trigger{every: int64(every), kick: make(chan struct{}, 1), done: make(chan struct{}), snapshot: snapshot}
	t.last.Store(marker.Now() - int64(every) - 1)
	p, err := marker.Register(pattern, t.onFire)
	if err != nil {
		return nil, fmt.Errorf("session %q: trigger: %w", s.cfg.Name, err)
	}
	t.probe = p
	t.wg.Add(1)
	go t.loop()
	return t, nil
}

// onFire runs on the firing goroutine: it only decides and signals.
func (t *Trigger) onFire(*marker.Event) {
	t.fired.Add(1)
	now := marker.Now()
	last := t.last.Load()
	if now-last < t.every || !t.last.CompareAndSwap(last, now) {
		t.suppressed.Add(1)
		return
	}
	select {
	case t.kick <- struct{}{}:
	default:
		t.suppressed.Add(1) // a snapshot is already pending
	}
}

func (t *Trigger) loop() {
	defer t.wg.Done()
	for {
		select {
		case <-t.done:
			return
		case <-t.kick:
			if err := t.snapshot(); err != nil {
				t.failed.Add(1)
				t.mu.Lock()
				t.lastErr = err
				t.mu.Unlock()
			} else {
				t.taken.Add(1)
			}
		}
	}
}

// TriggerStats counts a trigger's activity: firings of the marker, those
// suppressed by the rate limit, snapshots written and snapshots that
// failed (LastError says why the last one did).
type TriggerStats struct {
	Fired, Suppressed, Taken, Failed uint64
	LastError                        error
}

// Stats returns the trigger's counters.
func (t *Trigger) Stats() TriggerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TriggerStats{Fired: t.fired.Load(), Suppressed: t.suppressed.Load(), Taken: t.taken.Load(), Failed: t.failed.Load(), LastError: t.lastErr}
}

// Close disconnects the trigger and waits for a snapshot in progress.
func (t *Trigger) Close() {
	t.probe.Unregister()
	close(t.done)
	t.wg.Wait()
}
