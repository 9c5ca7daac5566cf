package wasmbin

import (
	"fmt"
	"math"
)

// CheckLimits bound what a module may ask of a compiler. Zero fields are
// not checked.
type CheckLimits struct {
	// Functions caps the functions of the module, imported and defined.
	Functions int
	// FunctionBytes caps the size of one function body.
	FunctionBytes int
	// Nesting caps the depth of nested blocks (block, loop, if, try) in
	// one function.
	Nesting int
	// Locals caps the locals one function declares (its parameters are
	// bounded by the bytes of its type).
	Locals int
	// TableElements caps the initial size of every table, and its maximum
	// size if the module grows tables.
	TableElements int
	// BrTableTargets caps the targets of one br_table instruction (the
	// compiler's cost grows with their square).
	BrTableTargets int
	// Units caps the module's size in units, a measure of the work of
	// compiling it: one per instruction (in function bodies and
	// initializer expressions), per 16 locals of a function and per
	// entry of every section (types, imports, tables, memories, globals,
	// exports, element segments and their items, data segments, tags);
	// three per defined function, two per br_table target, and one more
	// per 128 levels of nesting for each block (nested blocks cost the
	// compiler the square of their depth). On the machine this was
	// measured on, the compiler needs about a microsecond per unit.
	Units int
	// UnitsPerByte caps the units per byte of the module (0: not
	// checked): whatever its shape, the work of compiling a module then
	// grows with its size.
	UnitsPerByte int
}

// Stats are what Check measured of a module.
type Stats struct {
	Functions     int // imported and defined
	Imported      int // imported functions
	MaxBodyBytes  int
	MaxBodyFunc   int // function index of the largest body
	MaxNesting    int
	MaxBrTable    int // targets of the largest br_table
	MaxLocals     int
	Instructions  int
	Locals        int
	TableElements uint32 // largest initial table size
	Units         int
	GrowsTables   bool
}

// LimitError is the error of Check for a module over one of its limits.
type LimitError struct {
	// Limit names the limit: "functions", "function bytes", "nesting",
	// "locals", "table elements", "br_table targets", "units" or "units
	// per byte".
	Limit string
	// Func is the function index (imports first) the limit applies to,
	// or -1; Table the table index, or -1.
	Func, Table int
	// Value is what the module has, Max the limit.
	Value, Max uint64
	// Bytes is the size of the module, for "units per byte".
	Bytes int
}

func (e *LimitError) Error() string {
	switch e.Limit {
	case "function bytes":
		return fmt.Sprintf("function %d has a body of %d bytes; the limit is %d", e.Func, e.Value, e.Max)
	case "nesting":
		return fmt.Sprintf("function %d nests blocks %d deep; the limit is %d", e.Func, e.Value, e.Max)
	case "br_table targets":
		return fmt.Sprintf("function %d has a br_table of %d targets; the limit is %d", e.Func, e.Value, e.Max)
	case "locals":
		return fmt.Sprintf("function %d has %d locals; the limit is %d", e.Func, e.Value, e.Max)
	case "functions":
		return fmt.Sprintf("module has %d functions; the limit is %d", e.Value, e.Max)
	case "table elements":
		return fmt.Sprintf("table %d may have %d elements; the limit is %d", e.Table, e.Value, e.Max)
	case "units per byte":
		return fmt.Sprintf("module has over %d units of code (instructions, locals and section entries) in %d bytes; the limit is %d per byte", e.Max, e.Bytes, e.Max/uint64(max(1, e.Bytes)))
	}
	return fmt.Sprintf("module has over %d units of code (instructions, locals and section entries); the limit is %d", e.Max, e.Max)
}

// Check walks every section of a module, every function body and every
// initializer expression, and stops at the first limit the module is
// over. It does not validate the module (types, indices, stack shapes):
// the compiler does that; it only makes sure that what the compiler gets
// costs at most what the limits allow, and that the instructions are ones
// it knows how to skip (an unknown opcode is malformed). It allocates
// nothing that grows with the module.
func Check(b []byte, lim CheckLimits) (*Stats, error) {
	secs, err := Sections(b)
	if err != nil {
		return nil, err
	}
	c := &checker{lim: lim, size: len(b)}
	var tables []tableInfo
	defined := -1
	for _, s := range secs {
		r := &reader{b: s.Payload}
		var err error
		switch s.ID {
		case SectionType:
			var ts []FuncType
			if ts, err = Types(s.Payload); err == nil {
				err = c.units(len(ts))
			}
		case SectionImport:
			var ims []Import
			if ims, err = Imports(s.Payload); err != nil {
				break
			}
			for _, im := range ims {
				if im.Kind == KindFunc {
					c.st.Imported++
				}
			}
			c.st.Functions += c.st.Imported
			if err = c.units(len(ims)); err == nil {
				err = c.functions()
			}
		case SectionFunction:
			var n int
			if n, err = r.count(1); err != nil {
				break
			}
			defined = n
			c.st.Functions += n
			if err = c.functions(); err == nil {
				err = c.units(3 * n)
			}
		case SectionTable:
			tables, err = c.tables(r)
		case SectionMemory:
			var ms []Limits
			if ms, err = Memories(s.Payload); err == nil {
				err = c.units(len(ms))
			}
		case SectionGlobal:
			err = c.globals(r)
		case SectionExport:
			var es []Export
			if es, err = Exports(s.Payload); err == nil {
				err = c.units(len(es))
			}
		case SectionElement:
			err = c.elements(r)
		case SectionCode:
			err = c.code(r, defined)
		case SectionData:
			err = c.data(r)
		case 13: // tags
			var n int
			if n, err = r.count(2); err == nil {
				err = c.units(n)
			}
		}
		if _, ok := err.(*LimitError); ok {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("section %d at offset %d: %w", s.ID, s.Start, err)
		}
	}
	for i, t := range tables {
		size := uint64(t.min)
		if c.st.GrowsTables {
			size = 1<<32 - 1
			if t.hasMax {
				size = uint64(t.max)
			}
		}
		if lim.TableElements > 0 && size > uint64(lim.TableElements) {
			return nil, &LimitError{Limit: "table elements", Func: -1, Table: i, Value: size, Max: uint64(lim.TableElements)}
		}
	}
	return &c.st, nil
}

type tableInfo struct {
	min, max uint32
	hasMax   bool
}

type checker struct {
	lim  CheckLimits
	size int
	max  int // units, -1 for none; 0 until computed
	st   Stats
	// For Instrument: the offsets in the body being walked just after
	// each loop's block type, and the highest global index its code uses.
	record    bool
	loops     []int
	maxGlobal int64
	// calls says whether the body has a call of any kind (call,
	// call_indirect, call_ref, or their return_ forms).
	calls bool
	// ops are the instructions that goJumps looks at, in order.
	ops []goOp
}

// units counts n units against the budget.
func (c *checker) units(n int) error {
	c.st.Units += n
	if c.max == 0 {
		c.max = -1
		if c.lim.Units > 0 {
			c.max = c.lim.Units
		}
		if c.lim.UnitsPerByte > 0 && (c.max < 0 || c.lim.UnitsPerByte*c.size < c.max) {
			c.max = c.lim.UnitsPerByte * c.size
		}
	}
	if c.max >= 0 && c.st.Units > c.max {
		e := &LimitError{Limit: "units", Func: -1, Table: -1, Value: uint64(c.st.Units), Max: uint64(c.max)}
		if c.lim.Units <= 0 || c.max < c.lim.Units {
			e.Limit, e.Bytes = "units per byte", c.size
		}
		return e
	}
	return nil
}

func (c *checker) functions() error {
	if c.lim.Functions > 0 && c.st.Functions > c.lim.Functions {
		return &LimitError{Limit: "functions", Func: -1, Table: -1, Value: uint64(c.st.Functions), Max: uint64(c.lim.Functions)}
	}
	return nil
}

func (c *checker) tables(r *reader) ([]tableInfo, error) {
	n, err := r.count(3)
	if err != nil {
		return nil, err
	}
	if err := c.units(n); err != nil {
		return nil, err
	}
	out := make([]tableInfo, 0, n)
	for range n {
		if _, err := r.byte(); err != nil { // reference type
			return nil, err
		}
		var t tableInfo
		if t.min, t.max, t.hasMax, err = r.limitValues(); err != nil {
			return nil, err
		}
		c.st.TableElements = max(c.st.TableElements, t.min)
		out = append(out, t)
	}
	return out, r.end()
}

func (c *checker) globals(r *reader) error {
	n, err := r.count(3)
	if err != nil {
		return err
	}
	if err := c.units(n); err != nil {
		return err
	}
	for range n {
		if err := c.valueType(r); err != nil {
			return err
		}
		if _, err := r.byte(); err != nil { // mutability
			return err
		}
		if err := c.expr(r, -1); err != nil {
			return err
		}
	}
	return r.end()
}

func (c *checker) elements(r *reader) error {
	n, err := r.count(1)
	if err != nil {
		return err
	}
	if err := c.units(n); err != nil {
		return err
	}
	for range n {
		flag, err := r.u32()
		if err != nil {
			return err
		}
		if flag > 7 {
			return malformed("element segment flag %d", flag)
		}
		if flag&3 == 2 { // explicit table index
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		if flag&1 == 0 { // active: offset expression
			if err := c.expr(r, -1); err != nil {
				return err
			}
		}
		if flag&3 != 0 { // element kind or reference type
			if flag&4 != 0 {
				err = c.valueType(r)
			} else {
				_, err = r.byte()
			}
			if err != nil {
				return err
			}
		}
		items, err := r.count(1)
		if err != nil {
			return err
		}
		if err := c.units(items); err != nil {
			return err
		}
		for range items {
			if flag&4 != 0 {
				err = c.expr(r, -1)
			} else {
				_, err = r.u32()
			}
			if err != nil {
				return err
			}
		}
	}
	return r.end()
}

func (c *checker) data(r *reader) error {
	n, err := r.count(1)
	if err != nil {
		return err
	}
	if err := c.units(n); err != nil {
		return err
	}
	for range n {
		flag, err := r.u32()
		if err != nil {
			return err
		}
		switch flag {
		case 0:
			err = c.expr(r, -1)
		case 1:
		case 2:
			if _, err = r.u32(); err == nil {
				err = c.expr(r, -1)
			}
		default:
			return malformed("data segment flag %d", flag)
		}
		if err != nil {
			return err
		}
		size, err := r.count(1)
		if err != nil {
			return err
		}
		r.off += size
	}
	return r.end()
}

func (c *checker) code(r *reader, defined int) error {
	n, err := r.count(1)
	if err != nil {
		return err
	}
	if n != max(defined, 0) {
		return malformed("%d function bodies for %d functions", n, max(defined, 0))
	}
	for i := range n {
		fn := c.st.Imported + i
		size, err := r.count(1)
		if err != nil {
			return err
		}
		if size > c.st.MaxBodyBytes {
			c.st.MaxBodyBytes, c.st.MaxBodyFunc = size, fn
		}
		if c.lim.FunctionBytes > 0 && size > c.lim.FunctionBytes {
			return &LimitError{Limit: "function bytes", Func: fn, Table: -1, Value: uint64(size), Max: uint64(c.lim.FunctionBytes)}
		}
		body := &reader{b: r.b[r.off : r.off+size]}
		r.off += size
		err = c.locals(body, fn)
		if err == nil {
			err = c.expr(body, fn)
		}
		if _, ok := err.(*LimitError); ok {
			return err
		}
		if err != nil {
			return fmt.Errorf("function %d: %w", fn, err)
		}
		if err := body.end(); err != nil {
			return fmt.Errorf("function %d: %w", fn, err)
		}
	}
	return r.end()
}

// locals reads a function's local declarations. The parameters are not
// counted: the type section is not resolved here, and a function has at
// most as many parameters as its type's bytes.
func (c *checker) locals(r *reader, fn int) error {
	n, err := r.count(2)
	if err != nil {
		return err
	}
	var sum uint64 // not an int: on 32-bit platforms 2^32 overflows one
	for range n {
		k, err := r.u32()
		if err != nil {
			return err
		}
		if err := c.valueType(r); err != nil {
			return err
		}
		sum += uint64(k)
		if c.lim.Locals > 0 && sum > uint64(c.lim.Locals) {
			return &LimitError{Limit: "locals", Func: fn, Table: -1, Value: sum, Max: uint64(c.lim.Locals)}
		}
		if sum > 1<<32 {
			return malformed("more than 2^32 locals")
		}
		if sum > math.MaxInt {
			return malformed("more locals than this platform counts")
		}
	}
	total := int(sum)
	c.st.MaxLocals = max(c.st.MaxLocals, total)
	c.st.Locals += total
	// Locals the code does not use cost the compiler next to nothing
	// (a function declaring 50000 takes it a millisecond), and using one
	// takes bytes of code.
	return c.units((total + 15) / 16)
}

// valueType skips a value type, with the heap type of a reference type.
func (c *checker) valueType(r *reader) error {
	t, err := r.byte()
	if err != nil {
		return err
	}
	switch t {
	case I32, I64, F32, F64, 0x7b, 0x70, 0x6f:
		return nil
	case 0x63, 0x64: // (ref null ht), (ref ht)
		return r.skipLEB()
	}
	return malformed("unknown value type 0x%02x", t)
}

func (r *reader) skipLEB() error {
	for i := 0; i < 10; i++ {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c < 0x80 {
			return nil
		}
	}
	return malformed("LEB128 number too long")
}

func (r *reader) skip(n int) error {
	if len(r.b)-r.off < n {
		return malformed("unexpected end of code")
	}
	r.off += n
	return nil
}

func (r *reader) memarg() error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align&0x40 != 0 { // multiple memories: a memory index follows
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return r.skipLEB() // offset, up to 64 bits
}

func (r *reader) blockType() error {
	t, err := r.byte()
	if err != nil {
		return err
	}
	switch t {
	case 0x40, I32, I64, F32, F64, 0x7b, 0x70, 0x6f:
		return nil
	case 0x63, 0x64:
		return r.skipLEB()
	}
	if t&0x80 == 0 { // a one-byte type index
		return nil
	}
	return r.skipLEB() // the rest of a type index (s33)
}

// expr walks instructions up to the end that closes the expression: a
// function body (fn >= 0) or an initializer expression (fn < 0).
func (c *checker) expr(r *reader, fn int) error {
	depth, count := 0, 0
	defer func() {
		c.st.Instructions += count
	}()
	last := -1 // index in c.ops of the instruction being walked, if recorded
	for {
		if last >= 0 {
			c.ops[last].end = r.off
			last = -1
		}
		at := r.off
		op, err := r.byte()
		if err != nil {
			return err
		}
		if c.record && fn >= 0 && recorded(op) {
			c.ops = append(c.ops, goOp{at: at, code: op})
			last = len(c.ops) - 1
		}
		if op >= 0x10 && op <= 0x15 {
			// call, call_indirect, return_call, return_call_indirect,
			// call_ref, return_call_ref
			c.calls = true
		}
		count++
		if count&1023 == 0 {
			if err := c.units(1024); err != nil {
				return err
			}
		}
		switch {
		case op == 0x02 || op == 0x03 || op == 0x04 || op == 0x06: // block, loop, if, try
			if err := r.blockType(); err != nil {
				return err
			}
			if op == 0x03 && c.record && fn >= 0 {
				c.loops = append(c.loops, r.off)
			}
			if err := c.nest(&depth, fn); err != nil {
				return err
			}
		case op == 0x1f: // try_table
			if err := r.blockType(); err != nil {
				return err
			}
			n, err := r.count(2)
			if err != nil {
				return err
			}
			for range n {
				kind, err := r.byte()
				if err != nil {
					return err
				}
				if kind < 2 { // catch and catch_ref name a tag
					if _, err := r.u32(); err != nil {
						return err
					}
				}
				if _, err := r.u32(); err != nil {
					return err
				}
			}
			if err := c.nest(&depth, fn); err != nil {
				return err
			}
		case op == OpEnd:
			if depth == 0 {
				if last >= 0 {
					c.ops[last].end = r.off
				}
				return c.units(count & 1023)
			}
			depth--
		case op == 0x18: // delegate ends a try
			if _, err := r.u32(); err != nil {
				return err
			}
			if depth == 0 {
				return malformed("delegate outside a block")
			}
			depth--
		case op <= 0x01, op == 0x05, op == 0x0a, op == 0x0f, op == 0x19, op == 0x1a, op == 0x1b, op == 0xd1,
			op >= 0x45 && op <= 0xc4:
			// No immediate.
		case op == 0x23 || op == 0x24: // global.get, global.set
			g, err := r.u32()
			if err != nil {
				return err
			}
			c.maxGlobal = max(c.maxGlobal, int64(g))
		case op == 0x07, op == 0x08, op == 0x09, op == 0x0c, op == 0x0d, op == 0x10, op == 0x12, op == 0x14, op == 0x15,
			op >= 0x20 && op <= 0x26, op == 0x3f, op == 0x40, op == 0xd2:
			if _, err := r.u32(); err != nil {
				return err
			}
		case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
			if _, err := r.u32(); err != nil {
				return err
			}
			if _, err := r.u32(); err != nil {
				return err
			}
		case op == 0x0e: // br_table
			n, err := r.count(1)
			if err != nil {
				return err
			}
			c.st.MaxBrTable = max(c.st.MaxBrTable, n)
			if c.lim.BrTableTargets > 0 && n > c.lim.BrTableTargets {
				return &LimitError{Limit: "br_table targets", Func: fn, Table: -1, Value: uint64(n), Max: uint64(c.lim.BrTableTargets)}
			}
			for range n + 1 {
				if _, err := r.u32(); err != nil {
					return err
				}
			}
			if err := c.units(2 * n); err != nil {
				return err
			}
		case op == 0x1c: // select t*
			n, err := r.count(1)
			if err != nil {
				return err
			}
			for range n {
				if err := c.valueType(r); err != nil {
					return err
				}
			}
		case op >= 0x28 && op <= 0x3e:
			if err := r.memarg(); err != nil {
				return err
			}
		case op == 0x41, op == 0x42, op == 0xd0: // i32.const, i64.const, ref.null
			if err := r.skipLEB(); err != nil {
				return err
			}
		case op == 0x43:
			if err := r.skip(4); err != nil {
				return err
			}
		case op == 0x44:
			if err := r.skip(8); err != nil {
				return err
			}
		case op == 0xfc:
			if err := c.opFC(r); err != nil {
				return err
			}
		case op == 0xfd:
			if err := opFD(r); err != nil {
				return err
			}
		case op == 0xfe:
			sub, err := r.u32()
			if err != nil {
				return err
			}
			if sub == 0x03 { // atomic.fence
				_, err = r.byte()
			} else {
				err = r.memarg()
			}
			if err != nil {
				return err
			}
		default:
			return malformed("unknown opcode 0x%02x at offset %d", op, r.off-1)
		}
	}
}

// nest enters a block.
func (c *checker) nest(depth *int, fn int) error {
	*depth++
	d := *depth
	c.st.MaxNesting = max(c.st.MaxNesting, d)
	if c.lim.Nesting > 0 && d > c.lim.Nesting {
		return &LimitError{Limit: "nesting", Func: fn, Table: -1, Value: uint64(d), Max: uint64(c.lim.Nesting)}
	}
	if d >= 128 {
		return c.units(d / 128)
	}
	return nil
}

func (c *checker) opFC(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	var imm int // u32 immediates
	switch {
	case sub <= 7: // saturating truncations
	case sub == 9, sub == 11, sub == 13, sub == 16, sub == 17: // data.drop, memory.fill, elem.drop, table.size, table.fill
		imm = 1
	case sub == 15: // table.grow
		c.st.GrowsTables = true
		imm = 1
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		imm = 2
	default:
		return malformed("unknown opcode 0xfc %d", sub)
	}
	for range imm {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

func opFD(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads and stores
		return r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		return r.skip(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		return r.skip(1)
	case sub >= 84 && sub <= 91: // load and store lane
		if err := r.memarg(); err != nil {
			return err
		}
		return r.skip(1)
	case sub <= 255:
		return nil
	}
	return malformed("unknown opcode 0xfd %d", sub)
}
