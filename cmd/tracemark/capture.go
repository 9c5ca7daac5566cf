package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

// capture reads an event stream to its end: it writes packets to a trace
// (if any), decodes and counts every record, and calls the optional hooks.
type capture struct {
	s     *client.Stream
	trace *traceOut // nil: no trace file
	// ctxErr: the hello's context fields are unknown (run fails).
	ctxErr error

	// onRecord sees every record; onSync marks the end of a drain;
	// onStats runs after each stats frame; onClasses sees the classes
	// of each classes frame, before the records of any of them. All
	// optional.
	onRecord  func(*wire.Record) error
	onSync    func() error
	onStats   func()
	onClasses func([]wire.EventClass)
	// packetsOnly skips decoding the records (and onRecord): packets go
	// to the trace as they came, with no work per event, and per-marker
	// counts come from the agent's stats.
	packetsOnly bool
	// goTrace, if set, receives the Go execution trace the stream
	// carries (wire.FrameGoTrace).
	goTrace io.Writer
	// par, if set, decodes the records and exports them on other
	// goroutines, instead of onRecord (record --otlp).
	par *otlpWorkers

	dec       *wire.Decoder
	stream    uint32 // of the packet whose records onRecord sees
	arrived   int64  // when that packet arrived, ns since the Unix epoch
	started   time.Time
	counts    map[string]uint64 // events received per marker
	events    uint64
	bytes     uint64
	discarded map[uint32]uint64 // per stream, cumulative, from packets
	stats     *wire.Stats       // latest counters from the agent
	end       *wire.End         // nil until the end frame

	// published holds events and lost() for other goroutines (the
	// host-wide commands' live totals), stored after every frame that
	// changes them; the fields above belong to run's goroutine.
	published struct{ events, lost atomic.Uint64 }
}

// publish stores the counters that other goroutines may read.
func (c *capture) publish() {
	c.published.events.Store(c.events)
	c.published.lost.Store(c.lost())
}

func newCapture(s *client.Stream, trace *traceOut) *capture {
	c := &capture{
		s: s, trace: trace, dec: wire.NewDecoder(), started: time.Now(),
		counts: map[string]uint64{}, discarded: map[uint32]uint64{},
	}
	c.ctxErr = c.dec.SetContext(s.Hello.Context)
	return c
}

// errCut reports a stream that ended without an end frame.
var errCut = errors.New("event stream cut before its end")

// run reads frames until the end frame. It returns nil after a complete
// stream, and an error wrapping errCut when the stream broke off. With
// par, it returns once the workers have exported every packet received.
func (c *capture) run() error {
	if c.ctxErr != nil {
		return fmt.Errorf("process %d: %w", c.s.Hello.PID, c.ctxErr)
	}
	err := c.frames()
	if c.par != nil {
		if perr := c.par.close(); err == nil {
			err = perr
		}
		c.par.takeCounts(c.counts)
	}
	return err
}

func (c *capture) frames() error {
	for {
		f, err := c.s.Next()
		if err != nil {
			if c.end != nil && errors.Is(err, io.EOF) {
				return nil
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("%w: %w", errCut, err)
		}
		if err := c.frame(f); err != nil {
			return err
		}
	}
}

func (c *capture) frame(f wire.Frame) error {
	switch f.Type {
	case wire.FrameClasses:
		var cs wire.Classes
		if err := f.JSON(&cs); err != nil {
			return err
		}
		if err := c.dec.Add(cs.Classes); err != nil {
			return err
		}
		if c.onClasses != nil {
			c.onClasses(cs.Classes)
		}
		if c.par != nil {
			c.par.addClasses(cs.Classes)
		}
		if c.trace != nil {
			return c.trace.addClasses(cs.Classes)
		}
	case wire.FramePacket:
		return c.packet(f)
	case wire.FrameGoTrace:
		if c.goTrace != nil {
			if _, err := c.goTrace.Write(f.Payload); err != nil {
				return fmt.Errorf("go trace: %w", err)
			}
		}
	case wire.FrameSync:
		if err := c.flushTrace(); err != nil {
			return err
		}
		if c.onSync != nil {
			return c.onSync()
		}
	case wire.FrameStats:
		var st wire.Stats
		if err := f.JSON(&st); err != nil {
			return err
		}
		c.stats = &st
		c.publish()
		if err := c.flushTrace(); err != nil {
			return err
		}
		if c.onStats != nil {
			c.onStats()
		}
	case wire.FrameEnd:
		var e wire.End
		if err := f.JSON(&e); err != nil {
			return err
		}
		c.end = &e
		if e.Stats != nil {
			c.stats = e.Stats
			c.publish()
		}
		if err := c.flushTrace(); err != nil {
			return err
		}
		if c.onSync != nil {
			return c.onSync()
		}
	}
	return nil // unknown frame types are skipped: newer agents may send some
}

// flushTrace has the packets given to the trace written now.
func (c *capture) flushTrace() error {
	if c.trace == nil {
		return nil
	}
	return c.trace.flush()
}

func (c *capture) packet(f wire.Frame) error {
	h, recs, err := f.Packet()
	if err != nil {
		return err
	}
	if c.trace != nil {
		if err := c.trace.packet(c.s, h, recs); err != nil {
			return err
		}
	}
	c.stream = h.Stream
	if c.par != nil {
		if err := c.par.packet(recs, time.Now().UnixNano()); err != nil {
			return err
		}
	} else if !c.packetsOnly {
		c.arrived = time.Now().UnixNano()
		// Counted per run of events of one class, not with a map
		// update per event.
		var last *wire.EventClass
		var n uint64
		err = c.dec.Decode(recs, func(r *wire.Record) error {
			if r.Class != last {
				if last != nil {
					c.counts[last.Name] += n
				}
				last, n = r.Class, 0
			}
			n++
			if c.onRecord != nil {
				return c.onRecord(r)
			}
			return nil
		})
		if last != nil {
			c.counts[last.Name] += n
		}
		if err != nil {
			return err
		}
	}
	c.events += uint64(h.Events)
	c.bytes += uint64(len(recs))
	c.discarded[h.Stream] = max(c.discarded[h.Stream], h.Discarded)
	c.publish()
	return nil
}

// lost returns the events lost so far: the agent's count, or what the
// packets say if the agent could not tell us (it died).
func (c *capture) lost() uint64 {
	n := c.received()
	if c.stats != nil {
		n = max(n, c.stats.Discarded)
	}
	return n
}

// received returns the events lost that the packets received so far
// count, hence that the trace counts: the agent ends every stream of each
// drain with its cumulative count, so this lags the agent's own count by
// at most one drain, and is what the progress line shows beside the
// events received.
func (c *capture) received() uint64 {
	var n uint64
	for _, d := range c.discarded {
		n += d
	}
	return n
}

// markerStats returns the agent's counters of one marker, if known.
func (c *capture) markerStats(name string) (wire.MarkerStats, bool) {
	if c.stats == nil {
		return wire.MarkerStats{}, false
	}
	for _, m := range c.stats.Markers {
		if m.Name == name {
			return m, true
		}
	}
	return wire.MarkerStats{}, false
}

// count returns the events of a marker received: counted as they came,
// or with packetsOnly, as the agent last reported them delivered.
func (c *capture) count(name string) uint64 {
	if c.par != nil {
		c.par.takeCounts(c.counts)
	}
	if !c.packetsOnly {
		return c.counts[name]
	}
	ms, _ := c.markerStats(name)
	return ms.Delivered
}

// markers returns the names of the markers seen, those with events first.
func (c *capture) markers() []string {
	if c.par != nil {
		c.par.takeCounts(c.counts)
	}
	names := slices.Sorted(maps.Keys(c.counts))
	if c.stats != nil {
		for _, m := range c.stats.Markers {
			if !slices.Contains(names, m.Name) {
				names = append(names, m.Name)
			}
		}
	}
	return names
}

// interrupter makes SIGINT and SIGTERM stop a recording cleanly: the
// agent drains everything recorded and ends the stream. A second signal
// gives up waiting, as does a signal before the recording started: the
// stream's context is cancelled.
type interrupter struct {
	a      *app
	ch     chan os.Signal
	done   chan struct{}
	cancel context.CancelFunc

	once   sync.Once
	mu     sync.Mutex
	t      *target
	s      *client.Stream
	caught int
}

// catchSignals installs the signal handler; call it before starting the
// recording, so that no signal falls between the start and the handler.
func (a *app) catchSignals(cancel context.CancelFunc) *interrupter {
	in := &interrupter{a: a, ch: make(chan os.Signal, 2), done: make(chan struct{}), cancel: cancel}
	signal.Notify(in.ch, os.Interrupt, syscall.SIGTERM)
	go in.loop()
	return in
}

// arm makes the next signal stop the recording of s.
func (in *interrupter) arm(t *target, s *client.Stream) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.t, in.s = t, s
}

// release restores the default signal handling. It is idempotent.
func (in *interrupter) release() {
	in.once.Do(func() {
		signal.Stop(in.ch)
		close(in.done)
	})
}

func (in *interrupter) loop() {
	for {
		select {
		case <-in.done:
			return
		case <-in.ch:
		}
		in.mu.Lock()
		in.caught++
		first, t, s := in.caught == 1, in.t, in.s
		in.mu.Unlock()
		if !first || s == nil {
			fmt.Fprintln(in.a.stderr, "\ninterrupted: closing without waiting for the last events")
			in.cancel()
			continue
		}
		go in.stop(t, s)
	}
}

// stop asks the agent to end the recording, saying what it waits for. An
// agent that does not answer within --timeout (the process is stopped,
// wedged, or gone) is given up on: the trace keeps what was received.
func (in *interrupter) stop(t *target, s *client.Stream) {
	ctx, cancel := context.WithTimeout(context.Background(), in.a.timeout)
	defer cancel()
	// A prompt stop says nothing (the live view erases its line and the
	// summary follows); a slow one says what it waits for.
	slow := time.AfterFunc(min(time.Second, in.a.timeout/2), func() {
		fmt.Fprintf(in.a.stderr, "\nstopping: waiting for pid %d to send its last events (Ctrl-C again to give up now)\n", t.pid)
	})
	err := t.client.Stop(ctx, s.Hello.Recording)
	slow.Stop()
	if err != nil {
		why := err.Error()
		if ctx.Err() != nil { // the error may not wrap it: say what happened
			why = fmt.Sprintf("no answer in %v: is it stopped (SIGSTOP, a debugger) or wedged?", in.a.timeout)
		}
		fmt.Fprintf(in.a.stderr, "stopping: pid %d did not stop the recording (%s); closing without its last events\n", t.pid, why)
		in.cancel()
	}
}

// outcome turns the end of a capture into the command's result.
func (a *app) outcome(c *capture, t *target, runErr error, kept string) error {
	if runErr == nil {
		if c.end.Reason == wire.EndError {
			return fmt.Errorf("the agent ended the recording: %v", c.end.Error)
		}
		if c.end.Reason == wire.EndShutdown {
			fmt.Fprintf(a.stderr, "the process is exiting: its agent ended the recording; %s\n", kept)
		}
		return nil
	}
	if !errors.Is(runErr, errCut) {
		return runErr
	}
	if errors.Is(runErr, context.Canceled) {
		return fmt.Errorf("interrupted; %s", kept) // a second Ctrl-C
	}
	if t.pid > 0 && waitExit(t.pid, time.Second) {
		return &targetDiedError{pid: t.pid, kept: kept}
	}
	return fmt.Errorf("%w; %s", runErr, kept)
}
