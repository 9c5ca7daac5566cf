package marker

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrRefused is returned by [Dynamic.Fire] for a marker whose events policy
// refuses (see [Dynamic.Refuse]).
var ErrRefused = errors.New("marker refused by policy")

// ErrRemoved is returned by [Dynamic.Fire] after [Dynamic.Remove].
var ErrRemoved = errors.New("marker removed")

// Dynamic is a marker defined at run time from a schema known only then:
// the markers of a module loaded into a sandbox. It has the same registry
// entry, probes and grace period as a typed marker, but checks its
// arguments on every Fire and returns an error instead of trusting the
// compiler.
type Dynamic struct {
	info *Info
}

type locationOption struct {
	file string
	line int
}

func (o locationOption) apply(d *definition) { d.file, d.line = o.file, o.line }

// DefinedAt sets the source location shown for a marker defined at run
// time, such as the module file that declared it.
func DefinedAt(file string, line int) Option { return locationOption{file, line} }

type exclusiveOption struct{}

func (exclusiveOption) apply(d *definition) { d.exclusive = true }

// Exclusive makes DefineDynamic fail with ErrNameTaken instead of joining
// an existing marker of the same name and schema. Module loaders use it so
// that a module can neither join nor later remove a host's marker.
func Exclusive() Option { return exclusiveOption{} }

// DefineDynamic defines (or joins, if the same name and schema exist) a
// marker at run time. Unlike the typed Define functions it returns errors.
func DefineDynamic(name string, fields []FieldInfo, opts ...Option) (*Dynamic, error) {
	d := definition{name: name, fields: append([]FieldInfo(nil), fields...)}
	for _, o := range opts {
		o.apply(&d)
	}
	m, err := define(d)
	if err != nil {
		return nil, err
	}
	return &Dynamic{info: m}, nil
}

// Info returns the marker's registry entry.
func (d *Dynamic) Info() *Info { return d.info }

// Enabled reports whether the marker has probes and is not refused.
func (d *Dynamic) Enabled() bool {
	return d.info.Enabled() && d.info.refused.Load() == nil
}

// Fire checks vals against the schema and delivers the event to the
// marker's probes. It returns an error, and delivers nothing, if the
// number or kinds of the values do not match, or the marker is refused or
// removed.
func (d *Dynamic) Fire(vals ...Value) error {
	m := d.info
	if m.removed.Load() {
		return fmt.Errorf("%s: %w", m.def.name, ErrRemoved)
	}
	if r := m.refused.Load(); r != nil {
		return fmt.Errorf("%s: %w: %s", m.def.name, ErrRefused, *r)
	}
	if len(vals) != len(m.def.fields) {
		return fmt.Errorf("%s: %d values for %d fields", m.def.name, len(vals), len(m.def.fields))
	}
	for i, v := range vals {
		v.check() // a Value forwarded from an Event whose probe returned
		if v.kind != m.def.fields[i].Kind || v.p == nil {
			return fmt.Errorf("%s: field %q wants %v, got %v", m.def.name, m.def.fields[i].Name, m.def.fields[i].Kind, v.kind)
		}
	}
	if !m.Enabled() {
		return nil
	}
	var ev Event
	ev.info = m
	for i, v := range vals {
		ev.head.Fields[i] = v.p
	}
	dispatch(hide(&ev))
	if debugMode {
		ev.done()
	}
	return nil
}

// Refuse stops the marker's events from reaching probes and records why,
// for operators (module policy). An empty reason lifts the refusal.
func (d *Dynamic) Refuse(reason string) {
	if reason == "" {
		d.info.refused.Store(nil)
	} else {
		d.info.refused.Store(&reason)
	}
	enabledChanges.Add(1)
}

// Remove disconnects every probe and removes the marker from the registry
// (a module was unloaded). When it returns, no probe is running for it.
// Defining the name again later creates a new marker.
func (d *Dynamic) Remove() {
	m := d.info
	registry.mu.Lock()
	if m.removed.Swap(true) {
		registry.mu.Unlock()
		return
	}
	if registry.byName[m.def.name] == m {
		delete(registry.byName, m.def.name)
	}
	if l := m.probes.Load(); l != nil {
		for _, p := range l.probes {
			p.forget(m)
		}
	}
	storeEnabled(m, nil)
	m.probes.Store(nil)
	registry.mu.Unlock()
	synchronize()
}

// forget drops m from the probe's connected list.
func (p *Probe) forget(m *Info) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.connected {
		if c == m {
			p.connected = append(p.connected[:i:i], p.connected[i+1:]...)
			return
		}
	}
}

// storeEnabled sets m.on for the probe list l: 1 if it has probes.
func storeEnabled(m *Info, l *probeList) {
	var v uint32
	if l != nil && len(l.probes) > 0 {
		v = 1
	}
	atomic.StoreUint32(&m.on, v)
	enabledChanges.Add(1)
}

// enabledChanges counts the changes of markers' enabled state, after each.
// The module sandbox reads it at every call into a module: it has a
// cache line of its own, like epoch.
var enabledChanges paddedUint64

// EnabledChanges returns a number that grows whenever a marker's enabled
// state may have changed (a probe connected or disconnected, a refusal set
// or lifted, a marker removed). It grows after the change: a copy of
// Enabled results read after reading EnabledChanges is current until the
// number changes. The module sandbox uses it to keep the enabled flags it
// writes into a module's memory current without reading every marker on
// every call.
func EnabledChanges() uint64 { return enabledChanges.Load() }
