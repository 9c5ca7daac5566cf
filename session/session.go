package session

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracemark/tracemark/internal/clock"
	"github.com/tracemark/tracemark/internal/filterform"
	"github.com/tracemark/tracemark/internal/probeabi"
	"github.com/tracemark/tracemark/internal/ring"
	"github.com/tracemark/tracemark/internal/rt"
	"github.com/tracemark/tracemark/marker"
)

// Mode says what a session does when its buffer is full.
type Mode uint8

const (
	// Discard keeps the oldest data: new events are dropped and counted.
	Discard Mode = iota
	// Overwrite keeps the newest data, dropping (and counting) the oldest:
	// a flight recorder, read with Snapshot.
	Overwrite
)

// String returns "discard" or "overwrite" ("Mode(N)" for other values).
func (m Mode) String() string {
	switch m {
	case Discard:
		return "discard"
	case Overwrite:
		return "overwrite"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode is the inverse of [Mode.String].
func ParseMode(s string) (Mode, error) {
	switch s {
	case "discard", "":
		return Discard, nil
	case "overwrite":
		return Overwrite, nil
	}
	return Discard, fmt.Errorf("unknown mode %q: want discard or overwrite", s)
}

// Option configures New. Options are made by the With functions of this
// package; the zero configuration, New without options, is the default of
// each. An option given an invalid value makes New fail with an error
// naming the option.
type Option interface{ apply(*config) }

// optionFunc is an Option that sets its field of the configuration.
type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is a session's configuration: New's name and options, defaults
// filled in.
type config struct {
	Name         string
	Mode         Mode
	BufferSize   int
	SubBufSize   int
	MaxStringLen int
	Context      []ContextField // the stream event context, in order
	errs         []error        // invalid option values, reported by New
}

// invalid records that option was given an invalid value.
func (c *config) invalid(option string, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", option, fmt.Sprintf(format, args...)))
}

// WithMode sets the session's mode: Discard (the default) or Overwrite.
// Any other value is invalid.
func WithMode(m Mode) Option {
	return optionFunc(func(c *config) {
		if m != Discard && m != Overwrite {
			c.invalid("WithMode", "unknown mode %v: want Discard or Overwrite", m)
			return
		}
		c.Mode = m
	})
}

// WithBufferSize sets the buffer size per shard, in bytes (default
// DefaultBufferSize, 4 MiB, which n = 0 keeps). A session has one shard
// per P (GOMAXPROCS when it is created, which follows the container's CPU
// limit), so it holds about n×GOMAXPROCS bytes, which must fit in the
// process's recording memory budget (MemoryBudget). It is split into
// sub-buffers (WithSubBufSize), each of which becomes one trace packet,
// so n must hold at least two of them; a negative n is invalid.
func WithBufferSize(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithBufferSize", "negative size %d; 0 keeps the default", n)
			return
		}
		c.BufferSize = n
	})
}

// WithSubBufSize sets the sub-buffer (packet) size, in bytes: a power of
// two of at least 4 KiB. A reader waiting in Wait is woken each time one
// fills. The default, which n = 0 keeps, is DefaultSubBufSize (256 KiB),
// or a quarter of the buffer size (WithBufferSize) if smaller. A negative
// n is invalid.
func WithSubBufSize(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithSubBufSize", "negative size %d; 0 keeps the default", n)
			return
		}
		c.SubBufSize = n
	})
}

// WithMaxStringLen caps each string and byte-slice field, in bytes.
// Longer values are cut and the cut is marked in the event. The default,
// which n = 0 keeps, is 1024; a negative n is invalid.
func WithMaxStringLen(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithMaxStringLen", "negative length %d; 0 keeps the default", n)
			return
		}
		c.MaxStringLen = n
	})
}

// WithThreadID records, in every event, the id of the OS thread that
// fired it, as the process sees it (gettid(2)): it is
// WithEventContext(ContextVTID), which says more. A session given both
// records the fields of the last.
func WithThreadID() Option { return WithEventContext(ContextVTID) }

// ErrNoThreadID is wrapped by the error of New for a context with a
// thread id (ContextVTID, ContextTID) where thread ids are not available.
var ErrNoThreadID = rt.ErrNoThreadID

// Default buffer geometry (WithBufferSize, WithSubBufSize). With the reader woken as
// sub-buffers fill, 4 MiB per P holds about 8 ms of one goroutine firing
// a small event flat out (500 MB/s), which rides out a busy reader's
// scheduling delays; 256 KiB packets keep wake-ups, packets and write
// calls to about two thousand a second at that rate.
const (
	DefaultBufferSize = 4 << 20
	DefaultSubBufSize = 256 << 10
)

// Errors returned by sessions.
var (
	// ErrState is wrapped by errors about calls that do not fit the
	// session's state (starting a destroyed session, for example).
	ErrState = errors.New("wrong session state")
)

type state uint8

const (
	created state = iota
	started
	stopped
	destroyed
)

var stateNames = [...]string{"created", "started", "stopped", "destroyed"}

// Session records the events of the markers its rules enable into its own
// lock-free buffers. Its methods are safe for concurrent use.
type Session struct {
	cfg config
	// cx and ctx are the context block's layout and each shard's block
	// (WithEventContext).
	cx  ctxLayout
	ctx contextBlocks
	buf *ring.Buffer

	// Wall-clock anchor: event timestamps are monotonic ns; wall time of a
	// timestamp ts is anchorWall + (ts - anchorMono).
	anchorWall time.Time
	anchorMono int64

	mu    sync.Mutex // guards rules and state; never held while calling into marker
	rules []*Rule
	state state
	// releaseClock ends the clock.Hold taken by Start, so that the clock
	// stays anchored near every record even if nobody converts for long.
	releaseClock func()

	// classes maps marker IDs to this session's event classes. Written
	// under classMu (from OnConnect, with the marker registry locked),
	// read lock-free on the fire path.
	classMu   sync.Mutex
	byMarker  atomic.Pointer[[]*Class]
	classList atomic.Pointer[[]*Class] // in id order

	filtered  atomic.Uint64
	overCost  atomic.Uint64
	truncated atomic.Uint64
	// filterRunCost overrides the run-time cost limit of CEL filters
	// compiled from now on; 0 keeps the budget. For tests.
	filterRunCost uint64
	readMu        sync.Mutex      // one reader: Drain, Snapshot
	freed         bool            // Destroy freed the buffers; under readMu
	streamSeq     []uint64        // per stream packet sequence numbers, under readMu
	converted     []convertedMark // per stream, under readMu; see finish
	// genericWalk makes finish measure records with ctf.RecordSizeFrom,
	// as it did before layout.recordSize: for the benchmark that
	// compares the two, on a session nothing else drains.
	genericWalk bool

	mem        int64        // bytes charged to the budget; under budget.mu
	bufMem     int64        // of which buffers, released by Destroy; under overflowMu
	overflowMu sync.Mutex   // serialises allocOverflow
	overflowAt atomic.Int64 // clock.Now before which allocOverflow does not retry
	ends       []streamEnd  // per stream, Drain's latest packet, under readMu
}

// New creates a session named name, which identifies it to operators and
// is required. It records nothing until Start.
func New(name string, opts ...Option) (*Session, error) {
	if name == "" {
		return nil, errors.New("session: a name is required")
	}
	cfg := config{Name: name}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, fmt.Errorf("session %q: %w", name, err)
	}
	if cfg.BufferSize == 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	if cfg.SubBufSize == 0 {
		cfg.SubBufSize = min(DefaultSubBufSize, floorPow2(cfg.BufferSize/4))
	}
	if cfg.MaxStringLen == 0 {
		cfg.MaxStringLen = 1024
	}
	if cfg.ThreadID() {
		if err := rt.CheckThreadID(); err != nil {
			return nil, fmt.Errorf("session %q: WithEventContext: %w", name, err)
		}
	}
	rc := ring.Config{
		SubBufSize:      cfg.SubBufSize,
		SubBufCount:     cfg.BufferSize / max(cfg.SubBufSize, 1),
		Overwrite:       cfg.Mode == Overwrite,
		TimestampOffset: timestampOffset,
	}
	if err := rc.Validate(); err != nil {
		return nil, fmt.Errorf("session %q: buffer size %d, sub-buffer size %d: %w",
			cfg.Name, cfg.BufferSize, cfg.SubBufSize, err)
	}
	// Charge the budget before allocating: a refused request allocates
	// nothing.
	s := &Session{cfg: cfg}
	shards := runtime.GOMAXPROCS(0)
	need := int64(shards) * int64(rc.ShardBytes())
	if err := charge(s, need, fmt.Sprintf("session %q (%d shards of %s)", cfg.Name, shards, sizeString(int64(rc.ShardBytes())))); err != nil {
		return nil, err // it names the session
	}
	s.bufMem = need
	buf, err := ring.NewShards(rc, shards)
	if err != nil { // not reached: rc is valid
		release(s, need)
		return nil, fmt.Errorf("session %q: %w", cfg.Name, err)
	}
	clock.Calibrate()
	s.buf, s.anchorWall, s.anchorMono = buf, time.Now(), clock.Now()
	s.byMarker.Store(&[]*Class{})
	s.classList.Store(&[]*Class{})
	s.streamSeq = make([]uint64, buf.Shards()+1) // and the overflow stream
	s.converted = make([]convertedMark, buf.Shards()+1)
	s.ends = s.newEnds()
	s.ctx = newContextBlocks(cfg.Context, buf.Shards()+1)
	s.cx, err = newCtxLayout(cfg.Context)
	if err != nil { // not reached: WithEventContext checked the fields
		release(s, need)
		return nil, fmt.Errorf("session %q: %w", cfg.Name, err)
	}
	return s, nil
}

func floorPow2(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// filterLimits returns what bounds the cost of the session's filters.
func (s *Session) filterLimits() filterLimits {
	return filterLimits{maxString: s.cfg.MaxStringLen, runCost: s.filterRunCost}
}

// Now returns the time in the clock of event timestamps: CLOCK_MONOTONIC
// nanoseconds, read from the CPU's time-stamp counter where the kernel
// trusts it (see internal/clock), which halves the cost of a timestamp.
func Now() int64 { return clock.Now() }

// Name returns the session's name.
func (s *Session) Name() string { return s.cfg.Name }

// Mode returns the session's mode (WithMode).
func (s *Session) Mode() Mode { return s.cfg.Mode }

// BufferSize returns the session's buffer size per shard, in bytes
// (WithBufferSize), the default filled in.
func (s *Session) BufferSize() int { return s.cfg.BufferSize }

// SubBufSize returns the session's sub-buffer (packet) size, in bytes
// (WithSubBufSize), the default filled in.
func (s *Session) SubBufSize() int { return s.cfg.SubBufSize }

// ThreadID reports whether the session records thread ids (a context
// with ContextVTID or ContextTID).
func (s *Session) ThreadID() bool { return s.cfg.ThreadID() }

// EventContext returns the context fields the session records after
// every record's header (WithEventContext), in order; nil for none.
func (s *Session) EventContext() []ContextField { return slices.Clone(s.cfg.Context) }

// MaxStringLen returns the session's cap on string and byte-slice fields,
// in bytes (WithMaxStringLen), the default filled in.
func (s *Session) MaxStringLen() int { return s.cfg.MaxStringLen }

// Streams returns the number of trace streams: one per buffer shard, and
// the overflow stream once GOMAXPROCS was raised above the shard count
// while recording (see Stats.Unsharded).
func (s *Session) Streams() int {
	if s.buf.Overflow() {
		return s.buf.Shards() + 1
	}
	return s.buf.Shards()
}

// Clock returns the wall-clock time of monotonic timestamp zero, so that
// wall = Clock() + timestamp.
func (s *Session) Clock() time.Time {
	return s.anchorWall.Add(-time.Duration(s.anchorMono))
}

// State returns "created", "started", "stopped" or "destroyed".
func (s *Session) State() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return stateNames[s.state]
}

// Rule is an enable rule: a glob over marker names with an optional filter.
type Rule struct {
	Pattern string
	Filter  string

	form    *filterform.Node // the checked form, if the filter came in one
	s       *Session
	probe   *marker.Probe // non-nil while the session is started
	refused []error       // from earlier connections, under s.mu
}

// Enable adds a rule: record the markers matching pattern (a name or a
// glob such as "http:*"), now and when they are defined later, keeping
// only the events for which filter (a CEL expression over the marker's
// fields, or "" for all) is true. The filter is type-checked against every
// marker the pattern matches; an error names the marker and the field.
// Markers that lack a field the filter names are left out (see
// [Rule.Refused]), unless that leaves no marker: then Enable fails. A
// filter whose estimated cost exceeds the budget is refused with an error
// that wraps [ErrFilterCost] and says what makes it expensive: filters run
// in the goroutine that fires the marker.
//
// Compiling CEL source needs CEL in the program: import package
// session/celfilter for it. Without it a filter other than "" is refused
// with [ErrFilterSource]; [Session.EnableChecked] takes filters that the
// tracemark command checked.
func (s *Session) Enable(pattern, filter string) (*Rule, error) {
	return s.enable(pattern, filter, nil)
}

// EnableChecked is Enable for a filter in its checked form: checked is
// the JSON expression tree that the tracemark command compiles from the
// CEL source filter and sends to the agent (the wire protocol's
// Rule.Checked), which the session validates, type-checks against each
// marker and bounds as Enable does, and evaluates without CEL. filter is
// the source, which the rule keeps for display. An empty checked is
// Enable(pattern, filter).
func (s *Session) EnableChecked(pattern, filter string, checked []byte) (*Rule, error) {
	if len(checked) == 0 {
		return s.Enable(pattern, filter)
	}
	form, err := filterform.Decode(checked)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", filter, err)
	}
	return s.enable(pattern, filter, form)
}

func (s *Session) enable(pattern, filter string, form *filterform.Node) (*Rule, error) {
	if err := marker.CheckPattern(pattern); err != nil {
		return nil, err
	}
	if filter != "" && form == nil && filterform.Sources() == nil {
		return nil, errNoCEL(filter)
	}
	if filter != "" || form != nil {
		ms, _ := marker.Match(pattern)
		var firstLeftOut error
		kept := 0
		for _, m := range ms {
			_, err := compileFilter(filter, form, m, s.filterLimits())
			switch {
			case errors.Is(leaveOut(err, filter, form, m), marker.ErrLeftOut):
				firstLeftOut = cmp.Or(firstLeftOut, err)
			case err != nil:
				return nil, err
			default:
				kept++
			}
		}
		if kept == 0 && firstLeftOut != nil {
			// No marker has the fields: a typo, most likely, which the
			// error names.
			return nil, firstLeftOut
		}
	}
	r := &Rule{Pattern: pattern, Filter: filter, form: form, s: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == destroyed {
		return nil, fmt.Errorf("session %q: enable: %w: destroyed", s.cfg.Name, ErrState)
	}
	if s.state == started {
		if err := r.connect(); err != nil {
			return nil, err
		}
	}
	s.rules = append(s.rules, r)
	return r, nil
}

// Refused returns why markers the rule matches are not recorded by it:
// markers left out because they lack a field the filter names (those
// errors wrap marker.ErrLeftOut), and markers defined later for which the
// filter does not type-check. Each marker's reason appears once, however
// often the session was restarted.
func (r *Rule) Refused() []error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []error
	all := slices.Clone(r.refused)
	if r.probe != nil {
		all = append(all, r.probe.Refused()...)
	}
	seen := map[string]bool{}
	for _, err := range all {
		if msg := err.Error(); !seen[msg] {
			seen[msg] = true
			out = append(out, err)
		}
	}
	return out
}

// Rules returns the session's rules.
func (s *Session) Rules() []*Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rules)
}

// Disable removes a rule. Markers no other rule matches stop being recorded
// once Disable returns.
func (s *Session) Disable(r *Rule) {
	s.mu.Lock()
	i := slices.Index(s.rules, r)
	if i >= 0 {
		s.rules = slices.Delete(s.rules, i, i+1)
		r.disconnect()
	}
	s.mu.Unlock()
	if i >= 0 {
		s.unbind(r)
	}
}

// Start begins recording.
func (s *Session) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case started:
		return nil
	case destroyed:
		return fmt.Errorf("session %q: start: %w: destroyed", s.cfg.Name, ErrState)
	}
	for i, r := range s.rules {
		if err := r.connect(); err != nil {
			for _, done := range s.rules[:i] {
				done.disconnect()
			}
			return err
		}
	}
	s.state = started
	s.releaseClock = clock.Hold()
	return nil
}

// Stop ends recording. When it returns, every event recorded is in the
// buffers and no probe of the session runs any more, so a Drain after
// Stop gets everything.
func (s *Session) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != started {
		return nil
	}
	for _, r := range s.rules {
		r.disconnect()
	}
	s.state = stopped
	s.releaseClock()
	return nil
}

// quiescent reports whether no event can be recorded any more: the session
// is stopped (Stop waits until no probe runs) or destroyed.
func (s *Session) quiescent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stopped || s.state == destroyed
}

// Destroy stops the session and releases it: its buffers are freed and
// their memory returns to the budget (MemoryBudget), and Drain and
// Snapshot fail from then on. Destroy waits for a Drain or Snapshot in
// progress. Calling it again does nothing.
func (s *Session) Destroy() {
	_ = s.Stop()
	s.mu.Lock()
	first := s.state != destroyed
	s.state = destroyed
	s.mu.Unlock()
	if !first {
		return
	}
	s.readMu.Lock()
	s.freed = true
	s.buf.Free()
	s.readMu.Unlock()
	s.overflowMu.Lock()
	release(s, s.bufMem)
	s.bufMem = 0
	s.overflowMu.Unlock()
}

func (r *Rule) connect() error {
	pinned := probeabi.Pinned[marker.ProbeOption](r.classOf) // see recorder
	p, err := marker.Register(r.Pattern, r.recorder(), pinned, marker.OnConnect(r.bind))
	if err != nil {
		return fmt.Errorf("session %q: %w", r.s.cfg.Name, err)
	}
	r.probe = p
	return nil
}

func (r *Rule) disconnect() {
	if r.probe != nil {
		r.refused = append(r.refused, r.probe.Refused()...)
		r.probe.Unregister() // a grace period: the probe does not run after this
		r.probe = nil
	}
}

// recorder returns the rule's probe function, the recording fast path.
// It is a pinned probe (internal/probeabi): it runs with the goroutine
// pinned to its P, so it writes into that P's buffer shard without pinning
// again, and it must not block, allocate or panic. Filters that allocate
// (CEL programs, regular expressions) run unpinned. It is a function literal rather than a method value, which would
// add a call per event. It is not inlined: the copy of a function literal
// made when its enclosing function is inlined is compiled without inlining
// its own calls (seen with Go 1.26), which cost the probe eight calls.
//
//go:noinline
func (r *Rule) recorder() marker.ProbeFunc {
	s := r.s
	return func(e *marker.Event) {
		// The marker hands over the class (see classOf): no lookup.
		ev := probeabi.Of(e)
		c := (*Class)(ev.Data)
		if c == nil || c.owner.Load() != r {
			return // another rule of this session records this marker
		}
		if fs := c.filt.Load(); fs != nil {
			if v := acceptPinned(fs, e, ev); v != accepted {
				c.filtered.Add(1)
				s.filtered.Add(1)
				if v == overCost {
					c.overCost.Add(1)
					s.overCost.Add(1)
				}
				return
			}
		}
		// Reserve room for the largest record this class can have, which
		// spares measuring it first, and commit what encode used; if that
		// does not fit in the current sub-buffer, measure and reserve exactly
		// (which switches sub-buffers or drops as the mode says). Either way
		// the timestamp is taken while pinned to the shard, so timestamps
		// never go back within a stream. It is in raw ticks until the reader
		// converts it (see finish).
		w, ok := s.buf.TryReservePinned(ev.P, c.layout.max)
		if !ok {
			if ev.P >= s.buf.Shards() && !s.buf.Overflow() {
				s.growOverflow(ev)
			}
			if w, ok = s.buf.ReservePinned(ev.P, c.layout.measure(&ev.Fields)); !ok {
				c.discarded.Add(1)
				return
			}
			// The slow path's own copy of the commit, which keeps the
			// fast path free of the test that follows it.
			n, truncated := c.layout.encode(w.Bytes(), c.ID, clock.Ticks(), &ev.Fields, s.ctx.block(ev.P))
			s.buf.CommitPinned(w.Cut(n))
			if truncated != 0 {
				c.truncated.Add(1)
				s.truncated.Add(1)
			}
			if s.buf.Lagging(ev.P) {
				yieldToReader(ev)
			}
			return
		}
		n, truncated := c.layout.encode(w.Bytes(), c.ID, clock.Ticks(), &ev.Fields, s.ctx.block(ev.P))
		s.buf.CommitPinned(w.Cut(n))
		if truncated != 0 {
			c.truncated.Add(1)
			s.truncated.Add(1)
		}
	}
}

// yieldToReader runs in the pinned probe after a sub-buffer switch that
// found the session's reader behind (ring.Buffer.Lagging): it unpins and
// yields the P, so that a woken reader waiting for a P (in this P's run
// queue or the global one) runs now rather than at the next preemption,
// then pins again, ev.P following the goroutine as in acceptPinned.
func yieldToReader(ev *probeabi.Event) {
	rt.Unpin()
	runtime.Gosched()
	ev.P = rt.Pin()
}

// growOverflow runs in the pinned probe when an event fires on a P without
// a buffer shard (GOMAXPROCS was raised after New) and the overflow shard
// does not exist yet: it unpins, allocates the overflow shard within the
// budget, and pins again, ev.P following the goroutine. If the budget
// refuses, events on such Ps are discarded (Stats.Unsharded) and the
// allocation is tried again at most once a second.
func (s *Session) growOverflow(ev *probeabi.Event) {
	if clock.Now() < s.overflowAt.Load() {
		return
	}
	rt.Unpin()
	s.allocOverflow()
	ev.P = rt.Pin()
}

func (s *Session) allocOverflow() {
	s.overflowMu.Lock()
	defer s.overflowMu.Unlock()
	if s.buf.Overflow() || s.bufMem == 0 { // allocated, or destroyed
		return
	}
	n := int64(s.buf.Config().ShardBytes())
	if err := charge(s, n, fmt.Sprintf("the overflow shard of session %q", s.cfg.Name)); err != nil {
		s.overflowAt.Store(clock.Now() + int64(time.Second))
		return
	}
	if !s.buf.AllocOverflow() {
		release(s, n)
		return
	}
	s.bufMem += n
}

// acceptPinned runs the filters of fs on e from the pinned probe, unpinning
// around those that allocate (CEL programs, regular expressions); ev.P
// follows the goroutine if it moves meanwhile.
func acceptPinned(fs *filterSet, e *marker.Event, ev *probeabi.Event) verdict {
	if !fs.unpinned {
		return fs.accept(e)
	}
	rt.Unpin()
	ok := fs.accept(e)
	ev.P = rt.Pin()
	return ok
}
