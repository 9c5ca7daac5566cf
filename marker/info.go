package marker

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/tracemark/tracemark/internal/probeabi"
)

// MaxFields is the largest number of fields a marker may have.
const MaxFields = probeabi.MaxFields

// Stability says how much an operator may rely on a marker staying as it is,
// in the spirit of DTrace's stability attributes. A Stability is also an
// [Option] for the Define functions.
type Stability uint8

const (
	// Unstable markers may change or disappear in any release. The default.
	Unstable Stability = iota
	// Stable markers keep their name and schema across releases; scripts
	// and dashboards may depend on them.
	Stable
	// Internal markers exist for the developers of the code itself.
	Internal
)

var stabilityNames = [...]string{Unstable: "unstable", Stable: "stable", Internal: "internal"}

// String returns "stable", "unstable" or "internal".
func (s Stability) String() string {
	if int(s) < len(stabilityNames) {
		return stabilityNames[s]
	}
	return fmt.Sprintf("stability(%d)", s)
}

func (s Stability) apply(d *definition) { d.stability = s }

// Option configures a marker at definition: [Doc], a [Stability], [InModule].
type Option interface{ apply(*definition) }

type docOption string

func (o docOption) apply(d *definition) { d.doc = string(o) }

// Doc gives the marker a one-line description for operators.
func Doc(text string) Option { return docOption(text) }

type moduleOption Module

func (o moduleOption) apply(d *definition) { d.module = Module(o) }

// InModule attributes the marker to a module other than the one that holds
// the defining code. Loaders of plug-in modules use it; compiled-in code does
// not need it.
func InModule(m Module) Option { return moduleOption(m) }

// Module identifies the code a marker belongs to: a Go module compiled into
// the binary (from its build info) or a module loaded at run time.
type Module struct {
	Path    string
	Version string
}

// String returns "path@version", or just the path when there is no version.
func (m Module) String() string {
	if m.Version == "" {
		return m.Path
	}
	return m.Path + "@" + m.Version
}

// definition is what a Define call says about a marker.
type definition struct {
	name      string
	fields    []FieldInfo
	doc       string
	stability Stability
	module    Module
	file      string
	line      int
	exclusive bool
	span      *SpanDecl // how exporters make spans of the events (span.go)
}

// Info is a marker as the registry knows it: its identity, schema and state.
// One Info exists per marker name, shared by every call site that defines
// it. Its methods are safe for concurrent use.
type Info struct {
	// on is first so that the disabled check in Fire is one load at the
	// start of the struct: non-zero while probes is non-nil. It is a plain
	// uint32 rather than the pointer itself because that keeps Fire within
	// the compiler's inlining budget even with six arguments.
	on     uint32 // read and written only with sync/atomic
	probes atomic.Pointer[probeList]

	def      definition
	provider string
	event    string
	format   string
	kinds    [MaxFields]Kind // copies of def.fields' kinds, for Event.Field
	nfields  uint8
	id       uint32
	sites    atomic.Int32
	removed  atomic.Bool
	refused  atomic.Pointer[string]
}

// Name returns the full name, "provider:event".
func (m *Info) Name() string { return m.def.name }

// Provider returns the part of the name before the colon.
func (m *Info) Provider() string { return m.provider }

// Event returns the part of the name after the colon.
func (m *Info) Event() string { return m.event }

// ID returns a small number unique to this marker in this process,
// assigned in definition order starting at 1.
func (m *Info) ID() uint32 { return m.id }

// NumFields returns the number of fields.
func (m *Info) NumFields() int { return len(m.def.fields) }

// Field returns the i-th field of the schema.
func (m *Info) Field(i int) FieldInfo { return m.def.fields[i] }

// Fields returns a copy of the schema.
func (m *Info) Fields() []FieldInfo { return append([]FieldInfo(nil), m.def.fields...) }

// FieldIndex returns the index of the named field, or -1.
func (m *Info) FieldIndex(name string) int {
	for i, f := range m.def.fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// Format returns the schema rendered as a format string in the style of
// kernel markers, such as "method=%s status=%d".
func (m *Info) Format() string { return m.format }

// Location returns "file:line" of the (first) definition, or just the
// file for markers defined at run time without a line.
func (m *Info) Location() string {
	if m.def.line == 0 {
		return m.def.file
	}
	return fmt.Sprintf("%s:%d", m.def.file, m.def.line)
}

// Module returns the module the marker belongs to.
func (m *Info) Module() Module { return m.def.module }

// Doc returns the one-line description, if any.
func (m *Info) Doc() string { return m.def.doc }

// Stability returns the marker's stability level.
func (m *Info) Stability() Stability { return m.def.stability }

// Enabled reports whether at least one probe is connected.
func (m *Info) Enabled() bool { return atomic.LoadUint32(&m.on) != 0 }

// ProbeCount returns the number of connected probes.
func (m *Info) ProbeCount() int {
	if l := m.probes.Load(); l != nil {
		return len(l.probes)
	}
	return 0
}

// CallSites returns how many Define calls share this marker.
func (m *Info) CallSites() int { return int(m.sites.Load()) }

// Refused returns why the marker's events are not delivered to probes, for
// markers of a module that policy refused, or "" when they are.
func (m *Info) Refused() string {
	if r := m.refused.Load(); r != nil {
		return *r
	}
	return ""
}

// String returns "provider:event(format)".
func (m *Info) String() string { return m.def.name + "(" + m.format + ")" }

func renderFormat(fields []FieldInfo) string {
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f.Name)
		b.WriteByte('=')
		b.WriteString(f.Kind.verb())
	}
	return b.String()
}
