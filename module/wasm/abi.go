package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
)

// slot is a marker the module defined; its handle is its index + 1.
type slot struct {
	d     *marker.Dynamic
	n     int
	kinds [marker.MaxFields]marker.Kind
	sizes [marker.MaxFields]uint8 // bytes of a fixed-size field, 0 for string and bytes
	// lenient strings have invalid UTF-8 replaced instead of refused.
	lenient [marker.MaxFields]bool
}

func kindSize(k marker.Kind) uint8 {
	switch k {
	case marker.KindString, marker.KindBytes:
		return 0
	case marker.KindBool:
		return 1
	}
	return uint8(k.Bits() / 8)
}

// instantiateHost provides the module's imports in its runtime: ABI v1 in
// tracemark_v1, and, for a forced module, stubs that trap for every
// function the host does not offer. WASI is instantiated by the caller.
func (m *Module) instantiateHost(ctx context.Context, a *module.Analysis) error {
	stubs := map[string]map[string]module.Import{}
	for _, im := range a.Imports {
		if im.Problem == "" {
			continue
		}
		if im.Kind != "func" || im.Type == "?" {
			return fmt.Errorf("%w: %w: %s.%s, a %s", module.ErrABIMismatch, ErrImport, im.Module, im.Name, im.Kind)
		}
		if im.Module == module.WASINamespace {
			continue // wazero's WASI has no such function: instantiation reports it
		}
		if stubs[im.Module] == nil {
			stubs[im.Module] = map[string]module.Import{}
		}
		stubs[im.Module][im.Name] = im
	}
	real := map[string]api.GoModuleFunc{"define": m.hostDefine, "fire": m.hostFire, "enabled": m.hostEnabled}
	b := m.rt.NewHostModuleBuilder(module.ABINamespace)
	for name, fn := range real {
		if _, stubbed := stubs[module.ABINamespace][name]; stubbed {
			continue
		}
		t := module.HostFunctions[name]
		b.NewFunctionBuilder().WithGoModuleFunction(fn, valueTypes(t.Params), valueTypes(t.Results)).WithName(name).Export(name)
	}
	addStubs(b, module.ABINamespace, stubs[module.ABINamespace])
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("host ABI: %w", err)
	}
	for ns, fns := range stubs {
		if ns == module.ABINamespace {
			continue
		}
		b := m.rt.NewHostModuleBuilder(ns)
		addStubs(b, ns, fns)
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("stubs for %s: %w", ns, err)
		}
	}
	return nil
}

func valueTypes(ts []byte) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	copy(out, ts) // wazero's value types are the binary format's codes
	return out
}

// errNotProvided is the panic of a stub: wazero turns it into a trap.
var errNotProvided = errors.New("the host does not provide this function (module was force-loaded)")

// addStubs adds functions that trap when called, for imports of a forced
// module that the host does not provide.
func addStubs(b wazero.HostModuleBuilder, ns string, fns map[string]module.Import) {
	for name, im := range fns {
		params, results := im.Signature()
		err := fmt.Errorf("%s.%s: %w", ns, name, errNotProvided)
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {
			panic(err)
		}), valueTypes(params), valueTypes(results)).WithName(name).Export(name)
	}
}

// The host functions of ABI v1 are the module's, shared by its
// instances: each finds the instance that calls it.
func (m *Module) hostDefine(ctx context.Context, mod api.Module, stack []uint64) {
	m.instanceOf(mod).hostDefine(ctx, mod, stack)
}

func (m *Module) hostFire(ctx context.Context, mod api.Module, stack []uint64) {
	m.instanceOf(mod).hostFire(ctx, mod, stack)
}

func (m *Module) hostEnabled(ctx context.Context, mod api.Module, stack []uint64) {
	m.instanceOf(mod).hostEnabled(ctx, mod, stack)
}

// hostDefine is ABI v1 define(buf, len) -> handle.
func (i *instance) hostDefine(_ context.Context, mod api.Module, stack []uint64) {
	stack[0] = i.define(mod, uint32(stack[0]), uint32(stack[1]))
}

// hostFire is ABI v1 fire(handle, args, len) -> result. It is the hot
// path of a module without an event buffer: a marker without probes
// costs a handle check and a load. Handle 0 of a module with an event
// buffer delivers the buffer (tracemark_events).
func (i *instance) hostFire(_ context.Context, mod api.Module, stack []uint64) {
	ms := i.m.slots()
	h, ptr, n := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	if h == 0 && i.events.n != 0 {
		// The module's event buffer is full.
		i.drainEvents(mod)
		stack[0] = module.ResultOK
		return
	}
	i.syncFlags(mod, false)
	if h-1 >= uint32(len(ms)) {
		stack[0] = i.violate(module.ResultBadMark, ErrUnknownMarker, "fire with handle %d; the module defined %d markers", int32(h), len(ms))
		return
	}
	s := ms[h-1]
	i.pending.fired++
	if !s.d.Enabled() {
		stack[0] = module.ResultOK
		if s.d.Info().Refused() != "" {
			stack[0] = module.ResultRefused
		}
		return
	}
	if !i.budget.take() {
		i.pending.dropped++
		stack[0] = module.ResultDropped
		return
	}
	if n > module.MaxArgsBytes {
		stack[0] = i.violate(module.ResultTooBig, ErrTooLarge, "%s: argument buffer of %d bytes, limit %d", s.d.Info().Name(), n, module.MaxArgsBytes)
		return
	}
	buf, ok := read(i.memory(mod), ptr, n)
	if !ok {
		stack[0] = i.violate(module.ResultFault, ErrOutOfBounds, "%s: arguments at %#x+%d outside memory", s.d.Info().Name(), ptr, n)
		return
	}
	stack[0] = i.fire(s, buf)
}

// hostEnabled is ABI v1 enabled(handle) -> 0 or 1.
func (i *instance) hostEnabled(_ context.Context, mod api.Module, stack []uint64) {
	ms := i.m.slots()
	h := uint32(stack[0])
	i.syncFlags(mod, false)
	if h-1 >= uint32(len(ms)) {
		stack[0] = i.violate(module.ResultBadMark, ErrUnknownMarker, "enabled with handle %d; the module defined %d markers", int32(h), len(ms))
		return
	}
	stack[0] = 0
	if ms[h-1].d.Enabled() {
		stack[0] = 1
	}
}

// fire decodes an argument buffer against the marker's schema and fires
// it. Strings and byte slices point into the module's memory, which does
// not change while the probes run (the module is suspended in this call),
// so nothing is copied.
func (in *instance) fire(s *slot, buf []byte) uint64 {
	var bits [marker.MaxFields]uint64
	var strs [marker.MaxFields]string
	var byts [marker.MaxFields][]byte
	off := 0
	for i := 0; i < s.n; i++ {
		size := int(s.sizes[i])
		if size == 0 {
			if len(buf)-off < 4 {
				return in.badArgs(s, i, module.ResultInvalid, ErrMalformed, "truncated before its length")
			}
			l := binary.LittleEndian.Uint32(buf[off:])
			off += 4
			if l > module.MaxFieldBytes {
				return in.badArgs(s, i, module.ResultTooBig, ErrTooLarge, fmt.Sprintf("%d bytes, limit %d", l, module.MaxFieldBytes))
			}
			if int(l) > len(buf)-off {
				return in.badArgs(s, i, module.ResultInvalid, ErrMalformed, fmt.Sprintf("length %d beyond the end of the buffer", l))
			}
			b := buf[off : off+int(l) : off+int(l)]
			off += int(l)
			if s.kinds[i] == marker.KindString {
				switch {
				case l == 0:
				case utf8.Valid(b):
					strs[i] = unsafe.String(&b[0], l)
				case s.lenient[i]:
					strs[i] = strings.ToValidUTF8(string(b), "\uFFFD") // rare: allocates
				default:
					return in.badArgs(s, i, module.ResultUTF8, ErrInvalidUTF8, "string is not valid UTF-8")
				}
			} else {
				byts[i] = b
			}
			continue
		}
		if len(buf)-off < size {
			return in.badArgs(s, i, module.ResultInvalid, ErrMalformed, "truncated")
		}
		switch size {
		case 1:
			bits[i] = uint64(buf[off])
			if s.kinds[i] == marker.KindBool && bits[i] > 1 {
				return in.badArgs(s, i, module.ResultInvalid, ErrMalformed, fmt.Sprintf("bool is %d, not 0 or 1", bits[i]))
			}
		case 2:
			bits[i] = uint64(binary.LittleEndian.Uint16(buf[off:]))
		case 4:
			bits[i] = uint64(binary.LittleEndian.Uint32(buf[off:]))
		default:
			bits[i] = binary.LittleEndian.Uint64(buf[off:])
		}
		off += size
	}
	if off != len(buf) {
		return in.violate(module.ResultInvalid, ErrMalformed, "%s: %d bytes after the last field", s.d.Info().Name(), len(buf)-off)
	}
	if err := fireValues(s.d, &s.kinds, s.n, &bits, &strs, &byts); err != nil {
		// Refused or removed since the check above.
		return module.ResultRefused
	}
	in.pending.delivered++
	return module.ResultOK
}

func (in *instance) badArgs(s *slot, i int, code int32, kind error, detail string) uint64 {
	info := s.d.Info()
	f := info.Field(i)
	return in.violate(code, kind, "%s: field %d %q (%v): %s", info.Name(), i, f.Name, f.Kind, detail)
}

// define parses a definition and defines the marker.
func (i *instance) define(mod api.Module, ptr, n uint32) uint64 {
	m := i.m
	if n > module.MaxDefineBytes {
		return i.violate(module.ResultTooBig, ErrTooLarge, "define: buffer of %d bytes, limit %d", n, module.MaxDefineBytes)
	}
	buf, ok := read(i.memory(mod), ptr, n)
	if !ok {
		return i.violate(module.ResultFault, ErrOutOfBounds, "define: buffer at %#x+%d outside memory", ptr, n)
	}
	def, v := parseDefinition(buf)
	if v != nil {
		return i.violate(v.code, v.kind, "define: %s", v.detail)
	}
	// Instances define at once: one definition at a time.
	m.defineMu.Lock()
	defer m.defineMu.Unlock()
	ms := m.slots()
	for j, s := range ms {
		if s.d.Info().Name() != def.name {
			continue
		}
		if !slices.Equal(s.d.Info().Fields(), def.fields) {
			return i.violate(module.ResultExists, ErrMarkerExists, "define: %s redefined with another schema", def.name)
		}
		i.writeFlag(mod, j+1)
		return uint64(j + 1)
	}
	if len(ms) >= m.limits.MaxMarkers {
		return i.violate(module.ResultLimit, ErrTooManyMarkers, "define: %s would be marker %d, limit %d", def.name, len(ms)+1, m.limits.MaxMarkers)
	}
	owner := marker.Module{Path: m.name}
	if m.info != nil {
		owner.Version = m.info.Version
	}
	d, err := marker.DefineDynamic(def.name, def.fields, marker.Exclusive(),
		marker.InModule(owner), marker.DefinedAt(m.file(), 0), marker.Doc(def.doc), def.stability)
	if errors.Is(err, marker.ErrNameTaken) {
		return i.violate(module.ResultExists, ErrMarkerExists, "define: %s belongs to the host or another module", def.name)
	}
	if err != nil {
		var conflict *marker.ConflictError
		if errors.As(err, &conflict) {
			return i.violate(module.ResultExists, ErrMarkerExists, "define: %v", err)
		}
		return i.violate(module.ResultInvalid, ErrBadDefinition, "define: %v", err)
	}
	s := &slot{d: d, n: len(def.fields), lenient: def.lenient}
	for j, f := range def.fields {
		s.kinds[j] = f.Kind
		s.sizes[j] = kindSize(f.Kind)
	}
	m.mu.Lock()
	if m.refusal != "" {
		d.Refuse(m.refusal)
	}
	m.markers = append(m.markers, s)
	h := len(m.markers)
	snap := m.markers
	m.marks.Store(&snap)
	m.mu.Unlock()
	i.writeFlag(mod, h)
	return uint64(h)
}

func (m *Module) file() string {
	if m.path != "" {
		return filepath.Base(m.path)
	}
	return m.name + ".wasm"
}

type definition struct {
	name      string
	fields    []marker.FieldInfo
	lenient   [marker.MaxFields]bool
	stability marker.Stability
	doc       string
}

// parseDefinition decodes an ABI v1 definition buffer:
//
//	u8 name_len, name             "provider:event", UTF-8
//	u8 n                          number of fields, at most 8
//	n × (u8 kind, u8 len, name)   kind code (| 0x80: lenient string) and field name
//	u8 stability                  0 unstable, 1 stable, 2 internal
//	u16le doc_len, doc            description, UTF-8, at most 1024 bytes
//
// badDefinition says why a definition buffer was refused.
type badDefinition struct {
	code   int32
	kind   error
	detail string
}

func parseDefinition(b []byte) (def definition, _ *badDefinition) {
	r := defReader{b: b}
	name, ok := r.str8()
	if !ok {
		return def, &badDefinition{module.ResultInvalid, ErrMalformed, "truncated name"}
	}
	if !utf8.ValidString(name) {
		return def, &badDefinition{module.ResultUTF8, ErrInvalidUTF8, "name is not valid UTF-8"}
	}
	def.name = name
	n, ok := r.u8()
	if !ok {
		return def, &badDefinition{module.ResultInvalid, ErrMalformed, name + ": truncated field count"}
	}
	if n > marker.MaxFields {
		return def, &badDefinition{module.ResultInvalid, ErrBadDefinition, fmt.Sprintf("%s: %d fields, at most %d", name, n, marker.MaxFields)}
	}
	for i := range int(n) {
		c, ok := r.u8()
		if !ok {
			return def, &badDefinition{module.ResultInvalid, ErrMalformed, fmt.Sprintf("%s: field %d truncated", name, i)}
		}
		k, known := module.KindFromCode(c &^ module.KindLenient)
		if !known || (c&module.KindLenient != 0 && k != marker.KindString) {
			return def, &badDefinition{module.ResultInvalid, ErrMalformed, fmt.Sprintf("%s: field %d has unknown kind code %d", name, i, c)}
		}
		def.lenient[i] = c&module.KindLenient != 0
		fname, ok := r.str8()
		if !ok {
			return def, &badDefinition{module.ResultInvalid, ErrMalformed, fmt.Sprintf("%s: field %d name truncated", name, i)}
		}
		if !utf8.ValidString(fname) {
			return def, &badDefinition{module.ResultUTF8, ErrInvalidUTF8, fmt.Sprintf("%s: field %d name is not valid UTF-8", name, i)}
		}
		def.fields = append(def.fields, marker.FieldInfo{Name: fname, Kind: k})
	}
	st, ok := r.u8()
	if !ok || st > uint8(marker.Internal) {
		return def, &badDefinition{module.ResultInvalid, ErrMalformed, fmt.Sprintf("%s: bad or missing stability", name)}
	}
	def.stability = marker.Stability(st)
	dl, ok := r.u16()
	if !ok {
		return def, &badDefinition{module.ResultInvalid, ErrMalformed, name + ": truncated doc length"}
	}
	if dl > module.MaxDocBytes {
		return def, &badDefinition{module.ResultTooBig, ErrTooLarge, fmt.Sprintf("%s: doc of %d bytes, limit %d", name, dl, module.MaxDocBytes)}
	}
	doc, ok := r.bytes(int(dl))
	if !ok {
		return def, &badDefinition{module.ResultInvalid, ErrMalformed, name + ": doc truncated"}
	}
	if !utf8.Valid(doc) {
		return def, &badDefinition{module.ResultUTF8, ErrInvalidUTF8, name + ": doc is not valid UTF-8"}
	}
	for _, r := range string(doc) {
		// Operators print docs: no terminal escapes.
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return def, &badDefinition{module.ResultInvalid, ErrMalformed, fmt.Sprintf("%s: doc contains control character %U", name, r)}
		}
	}
	def.doc = string(doc)
	if r.off != len(b) {
		return def, &badDefinition{module.ResultInvalid, ErrMalformed, fmt.Sprintf("%s: %d bytes after the definition", name, len(b)-r.off)}
	}
	return def, nil
}

type defReader struct {
	b   []byte
	off int
}

func (r *defReader) u8() (uint8, bool) {
	if r.off >= len(r.b) {
		return 0, false
	}
	r.off++
	return r.b[r.off-1], true
}

func (r *defReader) u16() (uint16, bool) {
	if len(r.b)-r.off < 2 {
		return 0, false
	}
	r.off += 2
	return binary.LittleEndian.Uint16(r.b[r.off-2:]), true
}

func (r *defReader) bytes(n int) ([]byte, bool) {
	if len(r.b)-r.off < n {
		return nil, false
	}
	r.off += n
	return r.b[r.off-n : r.off], true
}

func (r *defReader) str8() (string, bool) {
	n, ok := r.u8()
	if !ok {
		return "", false
	}
	b, ok := r.bytes(int(n))
	return string(b), ok
}

// budget is a token bucket: EventBurst tokens, refilled at EventRate per
// second. It reads the clock only when the bucket stops being full (to
// date the start of the refill) and when it runs out of tokens, so that a
// module firing below its budget reads it about once per EventBurst
// events. It is used with callMu held.
type budget struct {
	unlimited bool
	perNs     float64
	burst     float64
	tokens    float64
	last      int64
}

func (b *budget) reset(l Limits, now int64) {
	b.unlimited = l.EventRate < 0
	b.perNs = l.EventRate / 1e9
	b.burst = float64(l.EventBurst)
	b.tokens = b.burst
	b.last = now
}

func (b *budget) take() bool {
	if b.unlimited {
		return true
	}
	if b.tokens >= 1 {
		if b.tokens >= b.burst {
			b.last = marker.Now() // full until now: no credit before
		}
		b.tokens--
		return true
	}
	now := marker.Now()
	b.tokens = min(b.burst, b.tokens+float64(now-b.last)*b.perNs)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}
