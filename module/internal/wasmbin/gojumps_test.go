package wasmbin

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

// goShaped is a function in the shape of Go's wasm code (see goJumps):
// f(n) = 100 + 2n for n >= 0, with the dispatch loop's local 1 as PC.
// Resume point 0 jumps forward to 2, skipping 1 (a mistaken landing in
// 1 would give 102 + ... and, for n = 0, never end); 2 jumps back to 1
// while n > 0.
func goShaped() []byte {
	return bytes.Join([][]byte{
		I32Const(0), LocalSet(1),
		{OpLoop, BlockVoid, OpBlock, BlockVoid, OpBlock, BlockVoid, OpBlock, BlockVoid},
		LocalGet(1), {0x0e, 2, 0, 1, 2}, {OpEnd},
		// 0: acc = 100; jump to 2
		I32Const(100), LocalSet(2),
		I32Const(2), LocalSet(1), {OpBr, 2}, {OpEnd},
		// 1: acc += 2; n--
		LocalGet(2), I32Const(2), {0x6a}, LocalSet(2),
		LocalGet(0), I32Const(1), {0x6b}, LocalSet(0), {OpEnd},
		// 2: if n { jump to 1 }; return acc
		LocalGet(0), {0x04, BlockVoid}, I32Const(1), LocalSet(1), {OpBr, 1}, {OpEnd},
		LocalGet(2), {0x0f},
		{OpEnd, OpUnreachable},
	}, nil)
}

// TestGoJumps: the instrumentation turns a Go-shaped function's forward
// jump into a branch to its block, leaves the backward one (a loop) to
// the loop head's stop check, and the function computes what it did.
func TestGoJumps(t *testing.T) {
	b := NewBuilder()
	fn := b.Func(Sig([]byte{I32}, I32), []byte{I32, I32}, goShaped())
	b.Export("f", fn)
	out, err := Instrument(b.Bytes(), "stop", "start")
	if err != nil {
		t.Fatal(err)
	}
	secs, err := Sections(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secs {
		if s.ID != SectionCode {
			continue
		}
		// Out of two dispatch blocks to resume point 2: br 1, not br 2
		// (the loop).
		if !bytes.Contains(s.Payload, []byte{0x41, 2, 0x21, 1, OpBr, 1, OpEnd}) || bytes.Contains(s.Payload, []byte{0x41, 2, 0x21, 1, OpBr, 2}) {
			t.Errorf("forward jump not rewritten: % x", s.Payload)
		}
		// The backward jump still goes to the loop (br 1 from inside the if).
		if !bytes.Contains(s.Payload, []byte{0x41, 1, 0x21, 1, OpBr, 1}) {
			t.Errorf("backward jump changed: % x", s.Payload)
		}
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	mod, err := rt.Instantiate(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{0, 1, 5} {
		res, err := mod.ExportedFunction("f").Call(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if want := 100 + 2*n; res[0] != want {
			t.Errorf("f(%d) = %d, want %d", n, res[0], want)
		}
	}
}

// TestGoJumpsOtherShapes: code not in Go's shape is left as it was.
func TestGoJumpsOtherShapes(t *testing.T) {
	body := append(goShaped(), OpEnd) // the function's end
	for name, mutate := range map[string]func([]byte) []byte{
		// A br_table target outside the dispatch blocks.
		"table out of the blocks": func(b []byte) []byte {
			return bytes.Replace(b, []byte{0x0e, 2, 0, 1, 2}, []byte{0x0e, 2, 0, 1, 3}, 1)
		},
		// The jump's constant is not what the dispatch reads.
		"other local": func(b []byte) []byte {
			return bytes.Replace(b, []byte{0x41, 2, 0x21, 1, OpBr, 2}, []byte{0x41, 2, 0x21, 2, OpBr, 2}, 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := mutate(bytes.Clone(body))
			c := &checker{record: true, max: -1}
			if err := c.expr(&reader{b: b}, 0); err != nil {
				t.Fatal(err)
			}
			if j := goJumps(b, c.ops); len(j) != 0 {
				t.Errorf("rewrites %+v", j)
			}
		})
	}
	c := &checker{record: true, max: -1}
	if err := c.expr(&reader{b: body}, 0); err != nil {
		t.Fatal(err)
	}
	if j := goJumps(body, c.ops); len(j) != 1 {
		t.Errorf("Go's shape: rewrites %+v, want one", j)
	}
}
