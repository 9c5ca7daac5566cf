package demoservice

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// storage simulates a remote database: a map behind latencies of a
// fraction of a millisecond to tens of milliseconds, and occasional
// failures.
type storage struct {
	mu    sync.Mutex
	items map[int]item
}

// Items exist for ids 1 to knownItems; others are not found.
const knownItems = 900

var (
	errNotFound = errors.New("not found")
	errTimeout  = errors.New("timeout")
	errConn     = errors.New("connection reset by peer")
)

func newStorage() *storage {
	s := &storage{items: make(map[int]item, knownItems)}
	for id := 1; id <= knownItems; id++ {
		s.items[id] = item{ID: id, Name: "item " + strconv.Itoa(id), Price: id * 7 % 10000, Updated: time.Now()}
	}
	return s
}

// call simulates the round trip of one operation: a latency, and a
// failure rate of 2% (half of them after a long timeout).
func call(op, key string, base time.Duration) error {
	start := time.Now()
	d := base + rand.N(base)
	if rand.IntN(50) == 0 {
		d *= 20 // the slow tail
	}
	var err error
	switch rand.IntN(100) {
	case 0:
		err, d = errTimeout, 25*time.Millisecond
	case 1:
		err = errConn
	}
	time.Sleep(d)
	if err != nil {
		storageError.Fire(op, key, err.Error())
		return err
	}
	storageQuery.Fire(op, key, time.Since(start))
	return nil
}

func (s *storage) get(id int) (item, error) {
	key := "item:" + strconv.Itoa(id)
	if err := call("get", key, 300*time.Microsecond); err != nil {
		return item{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[id]
	if !ok {
		return item{}, errNotFound
	}
	return it, nil
}

func (s *storage) put(it item) error {
	if err := call("put", "item:"+strconv.Itoa(it.ID), 500*time.Microsecond); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[it.ID] = it
	return nil
}

func (s *storage) scan(q string) (int, error) {
	if err := call("scan", "q:"+q, 2*time.Millisecond); err != nil {
		return 0, err
	}
	return len(q) * 3, nil
}

// batchLoop runs the "reindex" job every second: a batch of puts.
func (svc *service) batchLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			svc.reindex()
		}
	}
}

func (svc *service) reindex() {
	start := time.Now()
	n := 20 + rand.IntN(40)
	jobStart.Fire("reindex", n)
	failed := 0
	for range n {
		id := 1 + rand.IntN(knownItems)
		if err := svc.storage.put(item{ID: id, Name: "item " + strconv.Itoa(id), Updated: time.Now()}); err != nil {
			failed++
		}
	}
	jobDone.Fire("reindex", n, failed, time.Since(start))
}
