package wasmbin

// Go's wasm backend compiles a function as a dispatch loop: the body is
//
//	block? loop block×M (local.get PC; br_table t0 ... tM-1) end
//	code of resume point 0 end
//	code of resume point 1 end
//	...
//	code of resume point M-1
//	end (the loop) ...
//
// and every jump between basic blocks as "i32.const PC; local.set PC;
// br <the loop>": back to the loop head, where the instrumentation's stop
// check and fuel count run, then through the br_table to the block of
// resume point br_table[PC]. A jump forward, to a resume point after the
// one it is in, can branch there directly instead: out of the enclosing
// blocks to the end of the one before the target's code, which is what
// the br_table would have done, without the loop head and the indirect
// branch. (PC is left set, as before.) Backward jumps keep going through
// the loop head: they are the loops that the stop check must see.
//
// goJumps finds a body of this shape among the instructions the checker
// recorded and returns the branches to rewrite, in order; for any other
// body it returns none.

// goOp is an instruction of a body, at body[at:end].
type goOp struct {
	at, end int
	code    byte
}

// recorded says which instructions goJumps needs: those that open and
// close blocks, the branches, and the instructions of the jump pattern.
// Any other instruction between two recorded ones shows as a gap between
// their offsets.
func recorded(op byte) bool {
	switch op {
	case 0x02, 0x03, 0x04, 0x06, 0x1f, OpEnd, 0x18, 0x0c, 0x0d, 0x0e, OpLocalGet, OpLocalSet, OpI32Const:
		return true
	}
	return false
}

// jump is a br at body[at:end] to rewrite as br depth.
type jump struct {
	at, end int
	depth   uint32
}

func goJumps(body []byte, ops []goOp) []jump {
	// The loop, first (after the stack pointer's load), inside at most
	// one block.
	i := 0
	for i < len(ops) && (ops[i].code == OpLocalGet || ops[i].code == OpLocalSet || ops[i].code == OpI32Const) {
		i++
	}
	if i < len(ops) && ops[i].code == 0x02 && voidBlock(body, ops[i]) {
		i++
	}
	if i >= len(ops) || ops[i].code != 0x03 || !voidBlock(body, ops[i]) {
		return nil
	}
	i++
	m := 0
	for i < len(ops) && ops[i].code == 0x02 && voidBlock(body, ops[i]) && ops[i].at == ops[i-1].end {
		m++
		i++
	}
	if m == 0 || i+2 >= len(ops) || ops[i].code != OpLocalGet || ops[i].at != ops[i-1].end ||
		ops[i+1].code != 0x0e || ops[i+1].at != ops[i].end || ops[i+2].code != OpEnd || ops[i+2].at != ops[i+1].end {
		return nil
	}
	pc, _, err := ReadU32(body[ops[i].at+1:])
	if err != nil {
		return nil
	}
	table, ok := brTable(body[ops[i+1].at+1 : ops[i+1].end])
	if !ok {
		return nil
	}
	for _, t := range table {
		if t >= uint32(m) {
			return nil // a target out of the dispatch blocks: not Go's
		}
	}
	i += 3
	// In resume point j's code, m-1-j dispatch blocks are open, and e
	// blocks of the code's own.
	var out []jump
	j, e := 0, 0
	for ; i < len(ops); i++ {
		o := ops[i]
		switch o.code {
		case 0x02, 0x03, 0x04, 0x06, 0x1f:
			e++
		case OpEnd, 0x18:
			if e > 0 {
				e--
				continue
			}
			if j == m-1 {
				return out // the loop's end
			}
			j++
		case 0x0c:
			d, _, err := ReadU32(body[o.at+1 : o.end])
			if err != nil || d != uint32(e+m-1-j) || i < 2 {
				continue // not to the loop
			}
			set, c := ops[i-1], ops[i-2]
			if set.code != OpLocalSet || set.end != o.at || c.code != OpI32Const || c.end != set.at {
				continue
			}
			if l, _, err := ReadU32(body[set.at+1 : set.end]); err != nil || l != pc {
				continue
			}
			k, ok := readS32(body[c.at+1 : c.end])
			if !ok {
				continue
			}
			// br_table takes its operand unsigned, and the last target
			// is the default.
			if t := int(table[min(uint32(k), uint32(len(table)-1))]); t > j {
				out = append(out, jump{at: o.at, end: o.end, depth: uint32(e + t - j - 1)})
			}
		}
	}
	return nil // the loop does not end: not Go's shape
}

// voidBlock says whether o is a block, loop or if with the empty type.
func voidBlock(body []byte, o goOp) bool {
	return o.end == o.at+2 && body[o.at+1] == BlockVoid
}

// brTable decodes a br_table's immediate: the targets, then the
// default.
func brTable(b []byte) ([]uint32, bool) {
	n, k, err := ReadU32(b)
	if err != nil || int(n) > len(b) {
		return nil, false
	}
	b = b[k:]
	out := make([]uint32, 0, n+1)
	for range n + 1 {
		t, k, err := ReadU32(b)
		if err != nil {
			return nil, false
		}
		out = append(out, t)
		b = b[k:]
	}
	return out, true
}

// readS32 decodes a signed LEB128 i32 that fills b.
func readS32(b []byte) (int32, bool) {
	var v int64
	var shift uint
	for i, c := range b {
		if shift >= 35 {
			return 0, false
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if i != len(b)-1 {
				return 0, false
			}
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return int32(v), v >= -1<<31 && v < 1<<31
		}
	}
	return 0, false
}
