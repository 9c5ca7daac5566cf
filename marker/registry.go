package marker

import (
	"errors"
	"fmt"
	"iter"
	"path"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/tracemark/tracemark/internal/ident"
)

// Errors returned by the registry.
var (
	// ErrInvalidName is wrapped by errors about marker, provider or field
	// names that are not [a-z][a-z0-9_]*.
	ErrInvalidName = errors.New("invalid name")
	// ErrSchemaConflict is wrapped by errors about a marker defined twice
	// with different schemas, and by probes whose expected schema differs
	// from a marker's.
	ErrSchemaConflict = errors.New("schema conflict")
	// ErrBadPattern is wrapped by errors about malformed glob patterns.
	ErrBadPattern = errors.New("bad pattern")
	// ErrNameTaken is returned by DefineDynamic with the Exclusive option
	// when a marker of that name exists.
	ErrNameTaken = errors.New("marker name taken")
)

// registry holds every marker and probe of the process. Writers (Define,
// Register, Unregister) take mu; the fire path never does.
var registry struct {
	mu      sync.Mutex
	byName  map[string]*Info
	markers []*Info // definition order; index+1 is the id
	probes  []*Probe
}

// splitName checks "provider:event" and returns its parts.
func splitName(name string) (provider, event string, err error) {
	provider, event, ok := strings.Cut(name, ":")
	if !ok {
		return "", "", fmt.Errorf("marker %q: %w: want provider:event", name, ErrInvalidName)
	}
	if !ident.Valid(provider) {
		return "", "", fmt.Errorf("marker %q: %w: provider %q must match %s", name, ErrInvalidName, provider, ident.Pattern)
	}
	if !ident.Valid(event) {
		return "", "", fmt.Errorf("marker %q: %w: event %q must match %s", name, ErrInvalidName, event, ident.Pattern)
	}
	return provider, event, nil
}

func checkFields(name string, fields []FieldInfo) error {
	if len(fields) > MaxFields {
		return fmt.Errorf("marker %q: %d fields, at most %d are allowed", name, len(fields), MaxFields)
	}
	for i, f := range fields {
		if !ident.Valid(f.Name) {
			return fmt.Errorf("marker %q: field %d: %w: %q must match %s", name, i, ErrInvalidName, f.Name, ident.Pattern)
		}
		if f.Kind == KindInvalid || f.Kind > KindSpanID {
			return fmt.Errorf("marker %q: field %q: invalid kind %v (declare fields with marker.Int, marker.String, ...)", name, f.Name, f.Kind)
		}
		for _, g := range fields[:i] {
			if g.Name == f.Name {
				return fmt.Errorf("marker %q: field %q declared twice", name, f.Name)
			}
		}
	}
	return nil
}

// ConflictError reports a marker defined twice with different schemas.
type ConflictError struct {
	Name           string
	First, Second  string // source locations, file:line
	Schema, Wanted []FieldInfo
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("marker %q: defined at %s as (%s) and again at %s as (%s)",
		e.Name, e.First, renderFormat(e.Schema), e.Second, renderFormat(e.Wanted))
}

// Unwrap lets errors.Is match [ErrSchemaConflict].
func (e *ConflictError) Unwrap() error { return ErrSchemaConflict }

// define registers a definition, or returns the existing marker of the same
// name and schema.
func define(d definition) (*Info, error) {
	provider, event, err := splitName(d.name)
	if err != nil {
		return nil, err
	}
	if err := checkFields(d.name, d.fields); err != nil {
		return nil, err
	}
	if err := checkSpan(&d); err != nil {
		return nil, err
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if old := registry.byName[d.name]; old != nil {
		if d.exclusive {
			return nil, fmt.Errorf("marker %q: %w (defined at %s, module %s)", d.name, ErrNameTaken, old.Location(), old.def.module)
		}
		if !slices.Equal(old.def.fields, d.fields) {
			return nil, &ConflictError{Name: d.name, First: old.Location(),
				Second: fmt.Sprintf("%s:%d", d.file, d.line), Schema: old.def.fields, Wanted: d.fields}
		}
		old.sites.Add(1)
		return old, nil
	}
	m := &Info{def: d, provider: provider, event: event, format: renderFormat(d.fields)}
	for i, f := range d.fields {
		m.kinds[i] = f.Kind
	}
	m.nfields = uint8(len(d.fields))
	m.sites.Store(1)
	if registry.byName == nil {
		registry.byName = make(map[string]*Info)
	}
	registry.markers = append(registry.markers, m)
	m.id = uint32(len(registry.markers))
	registry.byName[d.name] = m
	for _, p := range registry.probes {
		p.connectLocked(m)
	}
	return m, nil
}

// mustDefine is define for the static Define functions: definitions are
// code, so a bad one panics, like regexp.MustCompile.
func mustDefine(name string, fields []FieldInfo, opts []Option) *Info {
	d := definition{name: name, fields: fields}
	for _, o := range opts {
		o.apply(&d)
	}
	// Caller 2 is the Define function's caller.
	if pc, file, line, ok := runtime.Caller(2); ok {
		d.file, d.line = file, line
		if d.module.Path == "" {
			d.module = moduleOf(pc)
		}
	}
	m, err := define(d)
	if err != nil {
		panic(err)
	}
	return m
}

// Lookup returns the marker with the exact name, or nil.
func Lookup(name string) *Info {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return registry.byName[name]
}

// All returns every defined marker in name order. It iterates over a
// snapshot taken when iteration starts.
func All() iter.Seq[*Info] {
	return func(yield func(*Info) bool) {
		for _, m := range snapshot() {
			if !yield(m) {
				return
			}
		}
	}
}

// Match returns the markers whose "provider:event" name matches the glob
// pattern (path.Match syntax: *, ?, [...]), in name order.
func Match(pattern string) ([]*Info, error) {
	if err := CheckPattern(pattern); err != nil {
		return nil, err
	}
	var out []*Info
	for _, m := range snapshot() {
		if ok, _ := path.Match(pattern, m.def.name); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// CheckPattern reports whether pattern is a well-formed glob over marker
// names.
func CheckPattern(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("%w: empty pattern", ErrBadPattern)
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("%w %q: %v", ErrBadPattern, pattern, err)
	}
	return nil
}

func snapshot() []*Info {
	registry.mu.Lock()
	out := make([]*Info, 0, len(registry.markers))
	for _, m := range registry.markers {
		if !m.removed.Load() {
			out = append(out, m)
		}
	}
	registry.mu.Unlock()
	slices.SortFunc(out, func(a, b *Info) int { return strings.Compare(a.def.name, b.def.name) })
	return out
}

var buildInfo = sync.OnceValue(func() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
})

// moduleOf finds the Go module that holds the function at pc, from the
// binary's build info.
func moduleOf(pc uintptr) Module {
	fn := runtime.FuncForPC(pc)
	if fn == nil {
		return Module{}
	}
	return moduleFor(packageOf(fn.Name()), buildInfo())
}

// moduleFor finds the module of package pkg in the build info bi.
func moduleFor(pkg string, bi *debug.BuildInfo) Module {
	if bi == nil {
		return Module{Path: pkg}
	}
	if pkg == "main" && bi.Path != "" {
		// The symbols of a command's package are named main.F: it is
		// the main package, bi.Path, in the main module.
		pkg = bi.Path
	}
	best := bi.Main
	found := within(pkg, best.Path)
	for _, dep := range bi.Deps {
		m := dep
		if dep.Replace != nil {
			m = dep.Replace
			m.Path = dep.Path
		}
		if within(pkg, m.Path) && (!found || len(m.Path) > len(best.Path)) {
			best, found = *m, true
		}
	}
	if !found {
		return Module{Path: pkg}
	}
	return Module{Path: best.Path, Version: best.Version}
}

// packageOf extracts the import path from a function symbol such as
// "example.com/a/b.init.func1" or "example.com/a/b.(*T).M".
func packageOf(sym string) string {
	slash := strings.LastIndexByte(sym, '/')
	dot := strings.IndexByte(sym[slash+1:], '.')
	if dot < 0 {
		return sym
	}
	return sym[:slash+1+dot]
}

func within(pkg, mod string) bool {
	return mod != "" && (pkg == mod || strings.HasPrefix(pkg, mod+"/"))
}
