package wasmbin

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

func TestInstrument(t *testing.T) {
	b := NewBuilder()
	loop := []byte{OpLoop, BlockVoid, OpBr, 0, OpEnd}
	fn := b.Func(Sig(nil), nil, loop)
	b.Start(fn)
	b.Export("f", fn)
	out, err := Instrument(b.Bytes(), "stop", "start")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Check(out, CheckLimits{}); err != nil {
		t.Fatalf("instrumented module does not check: %v", err)
	}
	secs, err := Sections(out)
	if err != nil {
		t.Fatal(err)
	}
	var ids []byte
	var exports []Export
	for _, s := range secs {
		ids = append(ids, s.ID)
		switch s.ID {
		case SectionExport:
			exports, _ = Exports(s.Payload)
		case SectionCode:
			// The loop head now tests global 0 (stop) and counts global 1.
			if !bytes.Contains(s.Payload, []byte{OpLoop, BlockVoid, 0x23, 0, 0x04, BlockVoid, OpUnreachable, OpEnd, 0x23, 1}) {
				t.Errorf("code has no stop check after its loop: % x", s.Payload)
			}
		}
	}
	// type, function, memory (added: the module had none), global, export, code
	if want := []byte{SectionType, SectionFunction, SectionMemory, SectionGlobal, SectionExport, SectionCode}; !bytes.Equal(ids, want) {
		t.Errorf("sections %v, want %v (no start section)", ids, want)
	}
	names := map[string]Export{}
	for _, e := range exports {
		names[e.Name] = e
	}
	if e, ok := names["stop"]; !ok || e.Kind != KindGlobal || e.Index != 0 {
		t.Errorf("stop export %+v", e)
	}
	if e, ok := names["start"]; !ok || e.Kind != KindFunc || e.Index != fn {
		t.Errorf("start export %+v", e)
	}
	if _, ok := names["f"]; !ok {
		t.Error("the module's own export is gone")
	}
	if _, err := Instrument(out, "stop", "start"); err == nil {
		t.Error("a module that exports stop is accepted")
	}
}

// codeBodies returns the expressions (after the locals) of a module's
// function bodies.
func codeBodies(t *testing.T, wasm []byte) [][]byte {
	t.Helper()
	secs, err := Sections(wasm)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, s := range secs {
		if s.ID != SectionCode {
			continue
		}
		r := &reader{b: s.Payload}
		n, err := r.count(1)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			size, err := r.count(1)
			if err != nil {
				t.Fatal(err)
			}
			br := &reader{b: r.b[r.off : r.off+size]}
			r.off += size
			c := &checker{max: -1}
			if err := c.locals(br, -1); err != nil {
				t.Fatal(err)
			}
			out = append(out, br.b[br.off:])
		}
	}
	return out
}

// TestInstrumentCallEntry: a function that calls (call, call_indirect,
// return_call)
// starts with the stop check and the fuel count, so that recursion
// without loops is stopped too; a leaf function does not. In a Go-shaped
// function that calls, the forward jump is still rewritten, and the
// function computes what it did.
func TestInstrumentCallEntry(t *testing.T) {
	b := NewBuilder()
	sig := Sig([]byte{I32}, I32)
	leaf := b.Func(sig, nil, LocalGet(0))
	caller := b.Func(sig, nil, LocalGet(0), Call(leaf))
	// call_indirect type 0 table 0, return_call (not instantiated: the
	// module has no table, and the host does not enable tail calls)
	indirect := b.Func(sig, nil, LocalGet(0), I32Const(0), []byte{0x11, 0, 0})
	tail := b.Func(sig, nil, LocalGet(0), []byte{0x12 /* return_call */, byte(leaf)})
	// goShaped with resume point 1 doing n = leaf(n) first.
	body := bytes.Replace(goShaped(), []byte{OpEnd, LocalGet(2)[0], LocalGet(2)[1]},
		bytes.Join([][]byte{{OpEnd}, LocalGet(0), Call(leaf), LocalSet(0), LocalGet(2)}, nil), 1)
	goFn := b.Func(sig, []byte{I32, I32}, body)
	b.Export("f", goFn)
	out, err := Instrument(b.Bytes(), "stop", "start")
	if err != nil {
		t.Fatal(err)
	}
	// stop is global 0, fuel global 1.
	check := []byte{0x23, 0, 0x04, BlockVoid, OpUnreachable, OpEnd, 0x23, 1, 0x41, 1, OpI32Sub, 0x24, 1}
	bodies := codeBodies(t, out)
	for fn, want := range map[uint32]bool{leaf: false, caller: true, indirect: true, tail: true, goFn: true} {
		if got := bytes.HasPrefix(bodies[fn], check); got != want {
			t.Errorf("function %d starts with the check: %v, want %v: % x", fn, got, want, bodies[fn])
		}
	}
	if !bytes.Contains(bodies[goFn], []byte{0x41, 2, 0x21, 1, OpBr, 1, OpEnd}) {
		t.Errorf("forward jump not rewritten: % x", bodies[goFn])
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	// Without the call_indirect function, which needs a table.
	b2 := NewBuilder()
	b2.Func(sig, nil, LocalGet(0)) // function 0 again: the leaf that body calls
	b2.Export("f", b2.Func(sig, []byte{I32, I32}, body))
	out, err = Instrument(b2.Bytes(), "stop", "start")
	if err != nil {
		t.Fatal(err)
	}
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
