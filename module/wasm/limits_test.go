package wasm

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// Shapes of modules that are cheap to write and expensive to compile.
// Each returns a module with metadata, named name.

// nestedBlocks has funcs functions of depth nested empty blocks.
func nestedBlocks(name string, depth, funcs int) []byte {
	b := wasmbin.NewBuilder()
	body := make([]byte, 0, 3*depth)
	for range depth {
		body = append(body, wasmbin.OpBlock, wasmbin.BlockVoid)
	}
	for range depth {
		body = append(body, wasmbin.OpEnd)
	}
	for range funcs {
		b.Func(sigVoid, nil, body)
	}
	return withModinfo(b.Bytes(), rawInfo(name))
}

// straightCode has funcs functions of n times (i32.const 0, drop).
func straightCode(name string, n, funcs int) []byte {
	b := wasmbin.NewBuilder()
	body := make([]byte, 0, 3*n)
	for range n {
		body = append(body, wasmbin.OpI32Const, 0, wasmbin.OpDrop)
	}
	for range funcs {
		b.Func(sigVoid, nil, body)
	}
	return withModinfo(b.Bytes(), rawInfo(name))
}

// manyLocals has funcs functions declaring n i32 locals each.
func manyLocals(name string, n uint32, funcs int) []byte {
	b := wasmbin.NewBuilder()
	for range funcs {
		b.FuncLocals(sigVoid, n, wasmbin.I32, nil)
	}
	return withModinfo(b.Bytes(), rawInfo(name))
}

// bigBrTable has one function with a br_table of n targets, all to the
// same block: the compiler's cost grows with n².
func bigBrTable(name string, n int) []byte {
	b := wasmbin.NewBuilder()
	body := []byte{wasmbin.OpBlock, wasmbin.BlockVoid}
	body = append(body, wasmbin.I32Const(0)...)
	body = wasmbin.AppendU32(append(body, 0x0e), uint32(n))
	for range n + 1 {
		body = append(body, 0)
	}
	body = append(body, wasmbin.OpEnd)
	b.Func(sigVoid, nil, body)
	return withModinfo(b.Bytes(), rawInfo(name))
}

// bigTable has a table of min elements (and max, if max > 0), and grows
// it if grow.
func bigTable(name string, min, max uint32, grow bool) []byte {
	b := wasmbin.NewBuilder()
	if grow {
		// table.grow 0 (ref.null func, 1)
		b.Func(sigVoid, nil, []byte{0xd0, 0x70}, wasmbin.I32Const(1), []byte{0xfc, 15, 0, wasmbin.OpDrop})
	}
	out := b.Bytes()
	// The builder has no tables: put one after the type and function
	// sections (before code), where the binary format wants it.
	var p []byte
	p = wasmbin.AppendU32(p, 1)
	p = append(p, 0x70)
	if max > 0 {
		p = wasmbin.AppendU32(wasmbin.AppendU32(append(p, 1), min), max)
	} else {
		p = wasmbin.AppendU32(append(p, 0), min)
	}
	secs, err := wasmbin.Sections(out)
	if err != nil {
		panic(err)
	}
	at := len(out)
	for _, s := range secs {
		if s.ID > wasmbin.SectionTable {
			at = s.Start
			break
		}
	}
	res := append([]byte{}, out[:at]...)
	res = wasmbin.AppendSection(res, wasmbin.SectionTable, p)
	res = append(res, out[at:]...)
	return withModinfo(res, rawInfo(name))
}

func TestCodeLimits(t *testing.T) {
	tests := []struct {
		name   string
		wasm   []byte
		limits Limits
		limit  string
		msg    string
	}{
		{"nested 300 KB", nestedBlocks("nested", 100_000, 1), Limits{}, "MaxNesting",
			"function 0 nests blocks 2049 deep; the limit is 2048 (Limits.MaxNesting)"},
		{"nested under a lower limit", nestedBlocks("nested", 1001, 1), Limits{MaxNesting: 1000}, "MaxNesting",
			"function 0 nests blocks 1001 deep; the limit is 1000"},
		{"functions", straightCode("funcs", 0, 100_001), Limits{}, "MaxFunctions",
			"module has 100001 functions; the limit is 100000"},
		{"locals", manyLocals("locals", 1<<30, 1), Limits{}, "MaxLocals",
			"function 0 has 1073741824 locals; the limit is 50000"},
		{"locals in many functions", manyLocals("locals", 50_000, 100), Limits{}, "CodeUnitsPerByte",
			"the limit is 4 per byte (CodeUnitsPerByte)"},
		{"body", straightCode("body", 400_000, 1), Limits{}, "MaxFunctionBytes",
			"function 0 has a body of 1200002 bytes; the limit is 1048576"},
		{"br_table", bigBrTable("brtable", 100_000), Limits{}, "MaxBrTableTargets",
			"function 0 has a br_table of 100000 targets; the limit is 4096"},
		{"table", bigTable("table", 1<<27, 0, false), Limits{}, "MaxTableElements",
			"table 0 may have 134217728 elements; the limit is 1048576"},
		{"growing table", bigTable("table", 1, 0, true), Limits{}, "MaxTableElements",
			"table 0 may have 4294967295 elements"},
		{"units", straightCode("units", 100_000, 50), Limits{}, "MaxCodeUnits",
			"the limit is 4000000 (Limits.MaxCodeUnits)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, WithLimits(tt.limits))
			_, err := h.Load(context.Background(), tt.wasm)
			var le *LimitError
			if !errors.Is(err, ErrCodeLimit) || !errors.As(err, &le) || le.Limit != tt.limit || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error = %v, want %s: %q", err, tt.limit, tt.msg)
			}
			if len(h.List()) != 0 {
				t.Error("refused module is listed")
			}
		})
	}
	// Under the limits, the same shapes load.
	h := newHost(t)
	for _, w := range [][]byte{nestedBlocks("okn", 2048, 1), manyLocals("okl", 1000, 1), bigBrTable("okb", 4096),
		bigTable("okt", 1<<20, 0, false), bigTable("okg", 1, 1<<20, true)} {
		if _, err := h.Load(context.Background(), w); err != nil {
			t.Error(err)
		}
	}
}

// A 60 MB module (under the 64 MiB file limit) is refused before it is
// compiled, without copies of itself.
func TestHugeModuleRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 60 MB module")
	}
	w := straightCode("huge", 300_000, 67) // 67 functions of 900 KB
	if len(w) < 60e6 || len(w) > DefaultLimits.MaxModuleBytes {
		t.Fatalf("module of %d bytes", len(w))
	}
	h := newHost(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := h.Load(context.Background(), w)
	runtime.ReadMemStats(&after)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "MaxCodeUnits" {
		t.Fatalf("error = %v, want MaxCodeUnits", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("refusing it allocated %d bytes", got)
	}
}

// The Go modules of the tests are well within the limits.
func TestGoModulesWithinLimits(t *testing.T) {
	for _, w := range [][]byte{hostileWasm(t)} {
		st, err := wasmbin.Check(w, wasmbin.CheckLimits{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d bytes: %d functions, body up to %d bytes, nesting %d, %d locals at most, br_table %d, %d units",
			len(w), st.Functions, st.MaxBodyBytes, st.MaxNesting, st.MaxLocals, st.MaxBrTable, st.Units)
		l := DefaultLimits
		if st.Functions*4 > l.MaxFunctions || st.MaxNesting*2 > l.MaxNesting || st.Units*3 > l.MaxCodeUnits ||
			st.MaxBodyBytes*4 > l.MaxFunctionBytes || st.MaxBrTable*2 > l.MaxBrTableTargets || st.Units > len(w) {
			t.Errorf("a Go module is close to the default limits: %+v", st)
		}
	}
}

func TestCompileDeadline(t *testing.T) {
	h := newHost(t, WithLimits(Limits{CompileTimeout: 1}))
	_, err := h.Load(context.Background(), straightCode("slow", 10, 10))
	if !errors.Is(err, ErrCompileTimeout) {
		t.Fatalf("error = %v, want ErrCompileTimeout", err)
	}
	if len(h.List()) != 0 {
		t.Error("module listed")
	}
	// A caller that gives up cancels the load.
	h = newHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = h.Load(ctx, straightCode("canceled", 10, 10))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if _, err := h.Load(context.Background(), straightCode("canceled", 10, 10)); err != nil {
		t.Errorf("the name stayed reserved: %v", err)
	}
}

func TestCheckMalformedCode(t *testing.T) {
	b := wasmbin.NewBuilder()
	b.Func(sigVoid, nil, []byte{0xff}) // no such opcode
	h := newHost(t)
	_, err := h.Load(context.Background(), withModinfo(b.Bytes(), rawInfo("bad")), WithForce())
	if !errors.Is(err, module.ErrNotWasm) || !strings.Contains(err.Error(), "unknown opcode 0xff") {
		t.Errorf("error = %v", err)
	}
}
