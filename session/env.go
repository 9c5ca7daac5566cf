package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tracemark/tracemark/internal/bytesize"
	"github.com/tracemark/tracemark/marker"
)

// Environment variables read by StartFromEnv, for programs that exit before
// anyone could attach to them:
//
//	TRACEMARK_ENABLE='http:*,db:query' TRACEMARK_OUTPUT=./trace ./myprog
const (
	// EnvEnable lists the marker globs to record, separated by commas.
	EnvEnable = "TRACEMARK_ENABLE"
	// EnvOutput is the trace directory to write (default "./tracemark-trace").
	EnvOutput = "TRACEMARK_OUTPUT"
	// EnvFilter is an optional filter applied to every glob, a CEL
	// expression: the program must import package session/celfilter to
	// compile it.
	EnvFilter = "TRACEMARK_FILTER"
	// EnvMode is "discard" (default) or "overwrite".
	EnvMode = "TRACEMARK_MODE"
	// EnvBuffer is the buffer size per shard in bytes, with an optional
	// K or M suffix (default 4M, session.DefaultBufferSize). A session has
	// one shard per GOMAXPROCS.
	EnvBuffer = "TRACEMARK_BUFFER"
	// EnvMemory is the process-wide recording memory budget, a size such
	// as 512M, read by every session of the process, not only by
	// StartFromEnv's (see MemoryBudget; SetMemoryBudget overrides it).
	EnvMemory = "TRACEMARK_MEMORY"
)

// EnvTrace is a recording started from the environment.
type EnvTrace struct {
	Session *Session
	Trace   *TraceWriter
	Dir     string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	err     error
}

// StartFromEnv starts recording if TRACEMARK_ENABLE is set, writing a CTF
// trace as the buffers fill (and at least every 100 ms). It returns nil,
// nil when the variable is not set, so programs can call it
// unconditionally:
//
//	func main() {
//		t, err := session.StartFromEnv()
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer t.Close() // flushes the trace; nil-safe
//		...
//	}
//
// Close must run before the program exits: a deferred call in main does
// it, but os.Exit and log.Fatal skip deferred calls, so call Close before
// those. Without Close the trace is still valid up to the last flush.
func StartFromEnv() (*EnvTrace, error) {
	globs := os.Getenv(EnvEnable)
	if strings.TrimSpace(globs) == "" {
		return nil, nil
	}
	mode, err := ParseMode(os.Getenv(EnvMode))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvMode, err)
	}
	size := DefaultBufferSize
	if v := os.Getenv(EnvBuffer); v != "" {
		if size, err = ParseSize(v); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvBuffer, err)
		}
	}
	dir := os.Getenv(EnvOutput)
	if dir == "" {
		dir = "tracemark-trace"
	}
	s, err := New("env", WithMode(mode), WithBufferSize(size))
	if err != nil {
		return nil, err
	}
	tw, err := startEnv(s, globs, dir)
	if err != nil {
		// The session's buffers are charged to the process's recording
		// memory budget until Destroy.
		s.Destroy()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &EnvTrace{Session: s, Trace: tw, Dir: dir, cancel: cancel}
	if mode == Discard {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			_ = tw.Run(ctx, 100*time.Millisecond)
		}()
	}
	return t, nil
}

// startEnv enables globs in s, creates its trace in dir and starts s.
func startEnv(s *Session, globs, dir string) (*TraceWriter, error) {
	filter := os.Getenv(EnvFilter)
	for _, g := range strings.Split(globs, ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		if _, err := s.Enable(g, filter); err != nil {
			if errors.Is(err, ErrFilter) || errors.Is(err, marker.ErrLeftOut) {
				return nil, fmt.Errorf("%s: %w", EnvFilter, err)
			}
			return nil, fmt.Errorf("%s: %w", EnvEnable, err)
		}
	}
	tw, err := CreateTrace(dir, s)
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		_ = tw.Close()
		return nil, err
	}
	return tw, nil
}

// Close stops recording and writes the rest of the trace (in overwrite
// mode, the most recent events the buffers hold). It is safe on a nil *EnvTrace and
// idempotent.
func (t *EnvTrace) Close() error {
	if t == nil {
		return nil
	}
	t.once.Do(func() {
		t.cancel()
		t.wg.Wait()
		t.Session.Stop()
		// In overwrite mode nothing was flushed: the buffers hold the
		// most recent events, and this drain writes them.
		t.err = t.Trace.Close()
		t.Session.Destroy()
	})
	return t.err
}

// ParseSize parses a byte size such as "4096", "64K", "4M" or "1G"
// (powers of 1024), as TRACEMARK_BUFFER, TRACEMARK_MEMORY and the
// command line's size flags do.
func ParseSize(s string) (int, error) { return bytesize.Parse(s) }
