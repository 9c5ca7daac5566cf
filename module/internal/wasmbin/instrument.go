package wasmbin

import "fmt"

// Instrument rewrites a module so that its host can stop it wherever it
// runs: it adds a mutable i32 global, exported as stop, and at the head
// of every loop of every function, and at the entry of every function
// that calls (call, call_indirect, call_ref or their return_ forms),
// "global.get stop; if; unreachable; end" (a load and a branch), so that
// setting the global to non-zero makes the module trap at its next loop
// iteration or call. That covers every unbounded run: between two checks
// no loop head is crossed and no calling function is entered, so each
// active frame runs on through straight-line code and can only enter
// leaf functions, which run no loop and call nothing: a bounded time
// (the stack depth times the body sizes). A loop-free recursion, which
// can make 2^depth calls in a stack depth bounded by the runtime, is
// stopped at its next call, whether direct, indirect or mutual.
//
// Every FuelPerYield checks (loop iterations or calls) the module also
// leaves its compiled
// code for a moment (a memory.grow of 0 pages, which the runtime serves
// in Go): a goroutine that runs compiled code cannot be preempted, and
// the host's timers need the scheduler to run. A module without a memory
// gets an empty one (no pages, no growth) for that; its code cannot have
// used a memory, or it would not have been valid.
//
// In a function compiled by Go's wasm backend it also rewrites the
// forward jumps, which go through the function's dispatch loop, into
// plain branches to their target (see goJumps): they cannot loop, so they
// need no stop check, and the loop head and the br_table cost Go code
// more than anything else a branch does.
//
// The module's start function, if any, is no longer called at
// instantiation but exported as start, for the host to call under the
// same control.
//
// It refuses a module whose code uses a global the module does not
// declare (it would be the new one), or that already exports stop or
// start.
func Instrument(b []byte, stop, start string) ([]byte, error) {
	secs, err := Sections(b)
	if err != nil {
		return nil, err
	}
	globals := 0
	hasMemory := false
	startFn := int64(-1)
	var code *Section
	for i := range secs {
		s := &secs[i]
		switch s.ID {
		case SectionImport:
			ims, err := Imports(s.Payload)
			if err != nil {
				return nil, err
			}
			for _, im := range ims {
				switch im.Kind {
				case KindGlobal:
					globals++
				case KindMemory:
					hasMemory = true
				}
			}
		case SectionMemory:
			n, _, err := ReadU32(s.Payload)
			if err != nil {
				return nil, err
			}
			hasMemory = hasMemory || n > 0
		case SectionGlobal:
			n, _, err := ReadU32(s.Payload)
			if err != nil {
				return nil, err
			}
			globals += int(n)
		case SectionExport:
			es, err := Exports(s.Payload)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				if e.Name == stop || e.Name == start {
					return nil, malformed("export %q is reserved for the host", e.Name)
				}
			}
		case SectionStart:
			fn, _, err := ReadU32(s.Payload)
			if err != nil {
				return nil, err
			}
			startFn = int64(fn)
		case SectionCode:
			code = s
		}
	}
	stopGlobal := uint32(globals)

	var newCode []byte
	if code != nil {
		if newCode, err = instrumentCode(code.Payload, stopGlobal); err != nil {
			return nil, err
		}
	}
	out := append([]byte{}, Header...)
	addedGlobal, addedExport := false, false
	// stop, a mutable i32 = 0, and fuel, a mutable i32 = FuelPerYield.
	global := AppendS64([]byte{I32, 0x01, 0x41, 0x00, OpEnd, I32, 0x01, 0x41}, FuelPerYield)
	global = append(global, OpEnd)
	exports := func(p []byte, n uint32) []byte {
		p = AppendU32(p, n)
		p = append(AppendName(p, stop), KindGlobal)
		p = AppendU32(p, stopGlobal)
		if startFn >= 0 {
			p = append(AppendName(p, start), KindFunc)
			p = AppendU32(p, uint32(startFn))
		}
		return p
	}
	nExports := uint32(1)
	if startFn >= 0 {
		nExports++
	}
	// order is the position of a known section in the binary format.
	order := map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
	for _, s := range secs {
		pos, known := order[s.ID]
		if known && pos > order[SectionMemory] && !hasMemory {
			out = AppendSection(out, SectionMemory, []byte{1, 1, 0, 0}) // one memory: 0 pages, at most 0
			hasMemory = true
		}
		if known && pos > order[SectionGlobal] && !addedGlobal {
			out = AppendSection(out, SectionGlobal, append(AppendU32(nil, 2), global...))
			addedGlobal = true
		}
		if known && pos > order[SectionExport] && !addedExport {
			out = AppendSection(out, SectionExport, exports(nil, nExports))
			addedExport = true
		}
		switch s.ID {
		case SectionGlobal:
			n, k, _ := ReadU32(s.Payload)
			p := AppendU32(nil, n+2)
			p = append(p, s.Payload[k:]...)
			out = AppendSection(out, SectionGlobal, append(p, global...))
			addedGlobal = true
		case SectionExport:
			n, k, _ := ReadU32(s.Payload)
			p := exports(nil, n+nExports)
			p = append(p, s.Payload[k:]...)
			out = AppendSection(out, SectionExport, p)
			addedExport = true
		case SectionStart:
			// Exported instead.
		case SectionCode:
			out = AppendSection(out, SectionCode, newCode)
		default:
			out = append(out, b[s.Start:s.End]...)
		}
	}
	if !hasMemory {
		out = AppendSection(out, SectionMemory, []byte{1, 1, 0, 0})
	}
	if !addedGlobal {
		out = AppendSection(out, SectionGlobal, append(AppendU32(nil, 2), global...))
	}
	if !addedExport {
		out = AppendSection(out, SectionExport, exports(nil, nExports))
	}
	return out, nil
}

// FuelPerYield is how many checks (loop iterations and calls from a
// calling function) an instrumented module runs between two exits from
// its compiled code.
const FuelPerYield = 1 << 16

// instrumentCode inserts the stop check and the fuel count at every loop
// head of a code section's bodies and at the entry of those that call,
// and turns the forward jumps of Go's
// code into plain branches (see goJumps); the fuel global follows stop.
func instrumentCode(p []byte, stop uint32) ([]byte, error) {
	fuel := stop + 1
	// if (stop) unreachable
	check := AppendU32([]byte{0x23}, stop)
	check = append(check, 0x04, BlockVoid, OpUnreachable, OpEnd)
	// fuel = fuel - 1
	check = AppendU32(append(check, 0x23), fuel)
	check = append(check, 0x41, 1, 0x6b /* i32.sub */, 0x24)
	check = AppendU32(check, fuel)
	// if (fuel == 0) { fuel = FuelPerYield; drop(memory.grow(0)) }
	check = AppendU32(append(check, 0x23), fuel)
	check = append(check, OpI32Eqz, 0x04, BlockVoid)
	check = AppendS64(append(check, 0x41), FuelPerYield)
	check = AppendU32(append(check, 0x24), fuel)
	check = append(check, 0x41, 0, OpMemoryGrow, 0, OpDrop, OpEnd)
	r := &reader{b: p}
	n, err := r.count(1)
	if err != nil {
		return nil, err
	}
	out := AppendU32(make([]byte, 0, len(p)+len(p)/16), uint32(n))
	c := &checker{record: true, max: -1}
	var body []byte
	var heads []int
	for i := range n {
		size, err := r.count(1)
		if err != nil {
			return nil, err
		}
		br := &reader{b: r.b[r.off : r.off+size]}
		r.off += size
		c.loops = c.loops[:0]
		c.ops = c.ops[:0]
		c.maxGlobal = -1
		c.calls = false
		if err := c.locals(br, -1); err != nil {
			return nil, fmt.Errorf("function body %d: %w", i, err)
		}
		entry := br.off
		if err := c.expr(br, i); err != nil {
			return nil, fmt.Errorf("function body %d: %w", i, err)
		}
		if c.maxGlobal >= int64(stop) {
			return nil, malformed("function body %d uses global %d, which the module does not declare", i, c.maxGlobal)
		}
		jumps := goJumps(br.b, c.ops)
		body = body[:0]
		last := 0
		loops := c.loops
		if c.calls {
			// The check at the entry, before the loop heads (which
			// all come after it).
			heads = append(append(heads[:0], entry), loops...)
			loops = heads
		}
		for len(loops) > 0 || len(jumps) > 0 {
			if len(jumps) == 0 || (len(loops) > 0 && loops[0] <= jumps[0].at) {
				body = append(body, br.b[last:loops[0]]...)
				body = append(body, check...)
				last = loops[0]
				loops = loops[1:]
				continue
			}
			j := jumps[0]
			body = append(body, br.b[last:j.at]...)
			body = AppendU32(append(body, 0x0c), j.depth)
			last = j.end
			jumps = jumps[1:]
		}
		body = append(body, br.b[last:]...)
		out = AppendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out, nil
}
