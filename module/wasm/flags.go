package wasm

import (
	"github.com/tetratelabs/wazero/api"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
)

// enabledFlags is where a module keeps its enabled flags (the
// tracemark_flags extension of ABI v1), and what the host last wrote
// there. Used with callMu held.
type enabledFlags struct {
	ptr, n uint32 // n == 0: the module has no flags
	// changes is marker.EnabledChanges when the flags were last written.
	changes uint64
	// defined is how many markers the module had then: another
	// instance may define one that this instance's flags lack.
	defined int
	buf     []byte
}

// setFlags records the flags array that tracemark_flags returned (ptr<<32
// | len) and writes it. An array outside the module's memory is an ABI
// violation, and the module is left with host-side checks only. Called
// with callMu held.
func (i *instance) setFlags(res uint64) {
	m := i.m
	p, n := uint32(res>>32), uint32(res)
	if n == 0 {
		return
	}
	if _, ok := read(i.memory(i.mod), p, n); !ok {
		i.violate(module.ResultFault, ErrOutOfBounds, "%s returned %d bytes of flags at %#x, outside memory", module.ExportFlags, n, p)
		return
	}
	// Only the bytes of handles the module may define are ever written.
	n = min(n, uint32(m.limits.MaxMarkers)+1)
	i.flags = enabledFlags{ptr: p, n: n, buf: make([]byte, n)}
	i.syncFlags(i.mod, true)
}

// syncFlags writes the module's enabled flags if any marker's state may
// have changed since they were last written (or always, if force). The
// module must be suspended (between calls, or in a call to the host).
// Called with callMu held.
func (i *instance) syncFlags(mod api.Module, force bool) {
	ms := i.m.slots()
	f := &i.flags
	if f.n == 0 {
		return
	}
	// Read the count before the states: a change after this read makes
	// the next sync write again.
	c := marker.EnabledChanges()
	if c == f.changes && len(ms) == f.defined && !force {
		return
	}
	f.changes, f.defined = c, len(ms)
	n := min(f.n, uint32(len(ms))+1)
	if n <= 1 {
		return
	}
	for i, s := range ms[:n-1] {
		f.buf[i+1] = 0
		if s.d.Enabled() {
			f.buf[i+1] = 1
		}
	}
	if mem := i.memory(mod); mem != nil {
		mem.Write(f.ptr+1, f.buf[1:n])
	}
}

// writeFlag writes the flag of the marker with handle h, just defined.
// Called with callMu held, from a call to the host.
func (i *instance) writeFlag(mod api.Module, h int) {
	ms := i.m.slots()
	f := &i.flags
	if uint32(h) >= f.n {
		return
	}
	var v byte
	if ms[h-1].d.Enabled() {
		v = 1
	}
	f.buf[h] = v
	if mem := i.memory(mod); mem != nil {
		mem.WriteByte(f.ptr+uint32(h), v)
	}
}
