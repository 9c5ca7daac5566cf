package marker

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"runtime/debug"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tracemark/tracemark/internal/probeabi"
	"github.com/tracemark/tracemark/internal/rt"
)

// ProbeFunc is the function a probe runs for each event of the markers it
// is connected to.
//
// It is called synchronously on the goroutine that fired the marker, so it
// must be quick and must not block for long: it delays the instrumented
// code. It may be called concurrently from many goroutines. It must not
// keep e, or Values, strings and byte slices obtained from it, after it
// returns (keep [Event.Clone] instead). It must not call Unregister on
// itself (Unregister waits for running probes). A panic is recovered: the
// probe is cut off and the fault recorded.
type ProbeFunc func(e *Event)

// Probe is a registered probe. Its methods are safe for concurrent use.
type Probe struct {
	pattern   string
	fn        ProbeFunc
	onConnect func(*Info) error
	expect    []FieldInfo
	format    string

	dead   atomic.Bool // cut off after a panic, or unregistered
	pinned bool        // runs pinned to its P; see internal/probeabi
	data   func(*Info) unsafe.Pointer

	mu        sync.Mutex // guards the fields below
	connected []*Info
	refused   []error
	fault     *Fault
}

// ProbeOption configures [Register].
type ProbeOption interface{ applyProbe(*Probe) }

type probeOptionFunc func(*Probe)

func (f probeOptionFunc) applyProbe(p *Probe) { f(p) }

func init() {
	probeabi.SetPinned(func(data func(*Info) unsafe.Pointer) ProbeOption {
		return probeOptionFunc(func(p *Probe) {
			p.pinned = true
			p.data = data
		})
	})
}

// ExpectFields makes the probe connect only to markers whose schema is
// exactly fields, as the kernel refused a probe whose format did not match
// the marker's.
func ExpectFields(fields ...FieldInfo) ProbeOption {
	return probeOptionFunc(func(p *Probe) { p.expect = append([]FieldInfo{}, fields...) })
}

// ExpectFormat makes the probe connect only to markers whose rendered format
// (see [Info.Format]) is exactly format.
func ExpectFormat(format string) ProbeOption {
	return probeOptionFunc(func(p *Probe) { p.format = format })
}

// OnConnect runs check, with the registry locked, before the probe is
// connected to a marker (one existing at registration or defined later).
// An error refuses that marker; an error wrapping [ErrLeftOut] leaves it
// out without failing [Register]. Sessions use it to type-check filters.
// check must not call into the registry.
func OnConnect(check func(*Info) error) ProbeOption {
	return probeOptionFunc(func(p *Probe) { p.onConnect = check })
}

// ErrLeftOut, wrapped by an [OnConnect] check's error, leaves a marker out
// of a probe without making [Register] fail: the probe connects to the
// other markers, and [Probe.Refused] lists the error. A filter that names a
// field only some of a glob's markers have leaves the others out this way.
var ErrLeftOut = errors.New("marker left out")

// Fault records a probe panic.
type Fault struct {
	Marker string
	// Value is what the probe passed to panic, detached from the event:
	// numbers, bools and runtime errors as they were, a string cloned,
	// and any other value (an error, a struct) as its text, formatted
	// when the probe panicked. A panic value may hold the event's strings,
	// which are valid only during the probe call (a module's memory may
	// be unmapped after), so the Fault keeps none of it.
	Value any
	Stack []byte
	Time  time.Time
}

func (f *Fault) Error() string {
	return fmt.Sprintf("probe panicked on %s: %v", f.Marker, f.Value)
}

var faults struct {
	count  atomic.Uint64
	mu     sync.Mutex
	recent []Fault // the last maxRecentFaults
}

const maxRecentFaults = 32

// FaultCount returns how many probe panics were recovered in this process.
func FaultCount() uint64 { return faults.count.Load() }

// RecentFaults returns the most recent probe panics, oldest first.
func RecentFaults() []Fault {
	faults.mu.Lock()
	defer faults.mu.Unlock()
	return slices.Clone(faults.recent)
}

// Register connects fn to every marker whose name matches pattern (an
// exact name or a glob such as "http:*"), now and when matching markers are
// defined later. Connecting the first probe enables a marker.
//
// If an existing marker that matches is refused (schema expectation or
// OnConnect check), Register fails and connects nothing, unless the check
// left it out ([ErrLeftOut]). Markers left out and markers defined later
// that are refused are listed by [Probe.Refused].
func Register(pattern string, fn ProbeFunc, opts ...ProbeOption) (*Probe, error) {
	if err := CheckPattern(pattern); err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, errors.New("marker.Register: nil probe function")
	}
	p := &Probe{pattern: pattern, fn: fn}
	for _, o := range opts {
		o.applyProbe(p)
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	var errs []error
	var matches []*Info
	for _, m := range registry.markers {
		if p.matches(m) {
			switch err := p.accept(m); {
			case errors.Is(err, ErrLeftOut):
				p.refused = append(p.refused, err) // p is not yet shared
				continue
			case err != nil:
				errs = append(errs, err)
			}
			matches = append(matches, m)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, m := range matches {
		p.attachLocked(m)
	}
	registry.probes = append(registry.probes, p)
	return p, nil
}

func (p *Probe) matches(m *Info) bool {
	if m.removed.Load() {
		return false
	}
	ok, _ := path.Match(p.pattern, m.def.name)
	return ok
}

// accept checks a marker against the probe's expectations.
func (p *Probe) accept(m *Info) error {
	if p.expect != nil && !slices.Equal(p.expect, m.def.fields) {
		return fmt.Errorf("probe %q on %s: %w: marker has (%s), probe expects (%s)",
			p.pattern, m.def.name, ErrSchemaConflict, renderFormat(m.def.fields), renderFormat(p.expect))
	}
	if p.format != "" && p.format != m.format {
		return fmt.Errorf("probe %q on %s: %w: marker format %q, probe expects %q",
			p.pattern, m.def.name, ErrSchemaConflict, m.format, p.format)
	}
	if p.onConnect != nil {
		if err := p.onConnect(m); err != nil {
			return fmt.Errorf("probe %q on %s: %w", p.pattern, m.def.name, err)
		}
	}
	return nil
}

// connectLocked connects p to a newly defined marker, if it matches.
func (p *Probe) connectLocked(m *Info) {
	if p.dead.Load() || !p.matches(m) {
		return
	}
	if err := p.accept(m); err != nil {
		p.mu.Lock()
		p.refused = append(p.refused, err)
		p.mu.Unlock()
		return
	}
	p.attachLocked(m)
}

func (p *Probe) attachLocked(m *Info) {
	old := m.probes.Load()
	n := &probeList{}
	if old != nil {
		n.probes = append(n.probes, old.probes...)
		n.data = append(n.data, old.data...)
	}
	var data unsafe.Pointer
	if p.data != nil {
		data = p.data(m)
	}
	n.probes = append(n.probes, p)
	n.data = append(n.data, data)
	m.probes.Store(n)
	storeEnabled(m, n)
	p.mu.Lock()
	p.connected = append(p.connected, m)
	p.mu.Unlock()
}

// detachLocked removes p from every marker it is connected to.
func (p *Probe) detachLocked() {
	p.mu.Lock()
	connected := p.connected
	p.connected = nil
	p.mu.Unlock()
	for _, m := range connected {
		removeFromList(m, p)
	}
	registry.probes = slices.DeleteFunc(registry.probes, func(q *Probe) bool { return q == p })
}

func removeFromList(m *Info, p *Probe) {
	old := m.probes.Load()
	if old == nil {
		return
	}
	n := &probeList{}
	for i, q := range old.probes {
		if q != p {
			n.probes = append(n.probes, q)
			n.data = append(n.data, old.data[i])
		}
	}
	if len(n.probes) == 0 {
		storeEnabled(m, nil) // the last probe is gone: disabled
		m.probes.Store(nil)
		return
	}
	m.probes.Store(n)
	storeEnabled(m, n)
}

// Unregister disconnects the probe from all markers. When it returns, the
// probe function is not running and will never be called again, even by
// Fire calls that were in progress on other goroutines. Calling it again
// does nothing. It must not be called from inside a probe.
func (p *Probe) Unregister() {
	registry.mu.Lock()
	p.dead.Store(true)
	p.detachLocked()
	registry.mu.Unlock()
	synchronize()
}

// Pattern returns the pattern the probe was registered with.
func (p *Probe) Pattern() string { return p.pattern }

// Markers returns the markers the probe is connected to.
func (p *Probe) Markers() []*Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.connected)
}

// Refused returns why markers defined after registration were not
// connected.
func (p *Probe) Refused() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.refused)
}

// Fault returns the panic that cut the probe off, or nil.
func (p *Probe) Fault() *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault
}

// Active reports whether the probe is registered and was not cut off.
func (p *Probe) Active() bool { return !p.dead.Load() }

// cutOff disconnects a probe that panicked. It runs on the firing
// goroutine, inside the reader section, so it must not wait for a grace
// period: the dead flag already stops further calls from stale lists.
func (p *Probe) cutOff(m *Info, v any) {
	f := Fault{Marker: m.def.name, Value: detachPanicValue(v), Stack: debug.Stack(), Time: time.Now()}
	faults.count.Add(1)
	faults.mu.Lock()
	faults.recent = append(faults.recent, f)
	if len(faults.recent) > maxRecentFaults {
		faults.recent = faults.recent[1:]
	}
	faults.mu.Unlock()
	p.mu.Lock()
	if p.fault == nil {
		p.fault = &f
	}
	p.mu.Unlock()
	if p.dead.Swap(true) {
		return // already cut off or unregistered
	}
	registry.mu.Lock()
	p.detachLocked()
	registry.mu.Unlock()
}

// detachPanicValue returns v as a Fault keeps it (see Fault.Value).
func detachPanicValue(v any) (d any) {
	switch v := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr,
		float32, float64, complex64, complex128, runtime.Error:
		return v
	case string:
		return strings.Clone(v)
	}
	defer func() {
		if recover() != nil {
			d = fmt.Sprintf("(a panic value of type %T that panicked when formatted)", v)
		}
	}()
	return fmt.Sprint(v) // a new string: formatting copies
}

// probeList is an immutable list of the probes of one marker, replaced as a
// whole when probes come and go (copy on write).
type probeList struct {
	probes []*Probe
	// data[i] is what probes[i]'s data function returned for this marker
	// (see internal/probeabi), nil for other probes.
	data []unsafe.Pointer
}

// dispatch runs the probes of an event's marker. It is the slow path of
// every Fire: log the event to Go's execution tracer if it runs, enter the
// reader section, call each live probe, leave.
//
// The per-P reader accounting of enterRead and exitRead is written out here
// for the common one-probe case: the calls cost half a nanosecond of the
// ten an enabled marker may take.
func dispatch(e *Event) {
	if trace.IsEnabled() {
		goTraceLog(e)
	}
	var t readToken
	if fastRead {
		t.idx = epoch.Load() & 1
		if widenGraceWindow {
			graceWindow()
		}
		pid := rt.Pin()
		if uint(pid) < maxPinnedPs {
			perPReaders[pid].lock[t.idx]++
			rt.Unpin()
		} else {
			rt.Unpin()
			t = enterAtomic(t.idx)
		}
	} else {
		t = enterRead()
	}
	list := e.info.probes.Load()
	if list == nil || len(list.probes) != 1 {
		runFrom(list, 0, e, t)
		return
	}
	// One probe, the common case: no loop state to resume after a panic.
	p := list.probes[0]
	if p.pinned && t.c == nil {
		// The recording fast path: a recorder's pinned probe alone on the
		// marker (see internal/probeabi) runs under the pin that counts the
		// reader's exit, and without deferred recovery, since a panic while
		// pinned is fatal anyway.
		e.head.Data = list.data[0]
		pid := rt.Pin()
		if !p.dead.Load() {
			e.head.P = pid
			p.fn(e)
			pid = e.head.P // the probe may have pinned again elsewhere
		}
		if uint(pid) < maxPinnedPs {
			perPReaders[pid].unlock[t.idx]++
		} else {
			atomic.AddUint64(&perPReaders[0].unlock[t.idx], 1)
		}
		rt.Unpin()
		return
	}
	defer func() {
		if p == nil {
			return
		}
		v := recover()
		if v != nil {
			p.cutOff(e.info, v)
		}
		exitRead(t)
	}()
	if !p.dead.Load() {
		if p.pinned {
			p.callPinned(e, p.dataFor(e.info))
		} else {
			p.fn(e)
		}
	}
	p = nil
	if fastRead && t.c == nil {
		pid := rt.Pin()
		if uint(pid) < maxPinnedPs {
			perPReaders[pid].unlock[t.idx]++
			rt.Unpin()
			return
		}
		rt.Unpin()
	}
	exitRead(t)
}

// dataFor returns p's data for m from m's current probe list. The one-probe
// path uses it for a pinned probe only when it cannot take the fast path
// (no per-P counters): keeping the list live across that path's defer
// instead cost every ordinary enabled probe a spill.
func (p *Probe) dataFor(m *Info) unsafe.Pointer {
	if l := m.probes.Load(); l != nil {
		if i := slices.Index(l.probes, p); i >= 0 {
			return l.data[i]
		}
	}
	return nil
}

// callPinned runs a pinned probe's function (see internal/probeabi).
func (p *Probe) callPinned(e *Event, data unsafe.Pointer) {
	e.head.Data = data
	e.head.P = rt.Pin()
	p.fn(e)
	rt.Unpin()
}

// runFrom calls the probes of list from index i on, then leaves the reader
// section. A panicking probe is cut off and the remaining probes still run;
// runtime.Goexit in a probe still leaves the reader section.
func runFrom(list *probeList, i int, e *Event, t readToken) {
	if list == nil { // the last probe went away since Fire checked
		exitRead(t)
		return
	}
	done := false
	defer func() {
		if done {
			return
		}
		v := recover()
		if v == nil { // runtime.Goexit: not ours to stop
			exitRead(t)
			return
		}
		list.probes[i].cutOff(e.info, v)
		runFrom(list, i+1, e, t)
	}()
	for ; i < len(list.probes); i++ {
		if p := list.probes[i]; p.dead.Load() {
			continue
		} else if p.pinned {
			p.callPinned(e, list.data[i])
		} else {
			p.fn(e)
		}
	}
	done = true
	exitRead(t)
}
