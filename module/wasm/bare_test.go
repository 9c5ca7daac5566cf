package wasm

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// Modules without a memory, a table, exports or a start function: valid
// modules that no Go compiler emits, through every path of the host.

// bareModule has nothing but its metadata.
func bareModule(name string) []byte {
	return withModinfo(wasmbin.NewBuilder().Bytes(), rawInfo(name))
}

// memoryless has no memory, and exports hooks that use the ABI as if it
// had one: out returns 4 bytes of output at 0, define and fire define a
// marker at 0 and fire handle 1, trap traps, spin loops, alloc is
// tracemark_alloc returning 0.
func memoryless(name string) []byte {
	b := wasmbin.NewBuilder()
	define := b.ImportFunc(module.ABINamespace, "define", sigDefine)
	fire := b.ImportFunc(module.ABINamespace, "fire", sigFire)
	b.Export("out", b.Func(sigHook, nil, wasmbin.I64Const(4)))
	b.Export("empty", b.Func(sigHook, nil, wasmbin.I64Const(0)))
	b.Export("define", b.Func(sigHook, nil,
		wasmbin.I32Const(0), wasmbin.I32Const(16), wasmbin.Call(define), wasmbin.Op(wasmbin.OpDrop), wasmbin.I64Const(0)))
	b.Export("fire", b.Func(sigHook, nil,
		wasmbin.I32Const(1), wasmbin.I32Const(0), wasmbin.I32Const(8), wasmbin.Call(fire), wasmbin.Op(wasmbin.OpDrop), wasmbin.I64Const(0)))
	b.Export("trap", b.Func(sigHook, nil, wasmbin.Op(wasmbin.OpUnreachable)))
	b.Export("spin", b.Func(sigHook, nil, wasmbin.Op(wasmbin.OpLoop, wasmbin.BlockVoid, wasmbin.OpBr, 0, wasmbin.OpEnd), wasmbin.Op(wasmbin.OpUnreachable)))
	b.Export(module.ExportAlloc, b.Func(wasmbin.Sig([]byte{wasmbin.I32}, wasmbin.I32), nil, wasmbin.I32Const(0)))
	return withModinfo(b.Bytes(), rawInfo(name))
}

// startDefines has no memory and a start function that calls define.
func startDefines(name string) []byte {
	b := wasmbin.NewBuilder()
	define := b.ImportFunc(module.ABINamespace, "define", sigDefine)
	b.Start(b.Func(sigVoid, nil, wasmbin.I32Const(0), wasmbin.I32Const(16), wasmbin.Call(define), wasmbin.Op(wasmbin.OpDrop)))
	return withModinfo(b.Bytes(), rawInfo(name))
}

// startTraps has no memory and a start function that traps.
func startTraps(name string) []byte {
	b := wasmbin.NewBuilder()
	b.Start(b.Func(sigVoid, nil, wasmbin.Op(wasmbin.OpUnreachable)))
	return withModinfo(b.Bytes(), rawInfo(name))
}

func TestBareModule(t *testing.T) {
	h := newHost(t)
	m, err := h.Load(context.Background(), bareModule("bare"))
	if err != nil {
		t.Fatal(err)
	}
	st := m.Status()
	if st.State != StateLive || st.MemoryPages != 0 || len(st.Markers) != 0 {
		t.Errorf("bare module: %v, %d pages, %d markers", st.State, st.MemoryPages, len(st.Markers))
	}
	if hooks := m.Hooks(); len(hooks) != 0 {
		t.Errorf("hooks %v", hooks)
	}
	if _, err := m.Call(context.Background(), "hook", []byte("in")); !errors.Is(err, ErrNoExport) {
		t.Errorf("call: %v, want ErrNoExport", err)
	}
	if s := h.List().String(); !strings.Contains(s, "bare") {
		t.Errorf("lsmod:\n%s", s)
	}
	if err := m.Unload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if h.Module("bare") != nil {
		t.Error("unloaded module still listed")
	}
	// The name is free again.
	if _, err := h.Load(context.Background(), bareModule("bare")); err != nil {
		t.Errorf("reload: %v", err)
	}
}

func TestMemorylessModule(t *testing.T) {
	tests := []struct {
		hook    string
		in      string
		wantErr error
		wantMsg string
		dead    bool
	}{
		{hook: "empty"},
		{hook: "empty", in: "x", wantErr: ErrOutOfBounds, wantMsg: "tracemark_alloc returned 1 bytes at 0x0, outside memory"},
		{hook: "out", wantErr: ErrOutOfBounds, wantMsg: "out returned 4 bytes of output at 0x0, outside memory"},
		{hook: "define", wantErr: ErrOutOfBounds, wantMsg: "define: buffer at 0x0+16 outside memory"},
		{hook: "fire", wantErr: ErrUnknownMarker, wantMsg: "fire with handle 1; the module defined 0 markers"},
		{hook: "trap", wantErr: ErrTrap, wantMsg: "unreachable", dead: true},
		{hook: "spin", wantErr: ErrDeadline, wantMsg: "overran its deadline", dead: true},
	}
	for _, tt := range tests {
		t.Run(tt.hook+"/"+tt.in, func(t *testing.T) {
			h := newHost(t, WithLimits(Limits{CallTimeout: 50 * time.Millisecond}))
			m, err := h.Load(context.Background(), memoryless("nomem"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Call(context.Background(), tt.hook, []byte(tt.in))
			if tt.wantErr == nil {
				if err != nil || len(out) != 0 {
					t.Fatalf("%q, %v", out, err)
				}
			} else if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
			st := m.Status()
			if (st.State == StateDead) != tt.dead {
				t.Errorf("state %v", st.State)
			}
			if !tt.dead {
				// Still callable.
				if _, err := m.Call(context.Background(), "empty", nil); err != nil {
					t.Errorf("call after %s: %v", tt.hook, err)
				}
			}
			if err := m.Unload(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			if h.Module("nomem") != nil {
				t.Error("name still reserved")
			}
		})
	}
}

func TestMemorylessStart(t *testing.T) {
	h := newHost(t)
	m, err := h.Load(context.Background(), startDefines("startdef"))
	if err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); st.Taint.String() != "WOE" || !strings.Contains(st.LastError, "outside memory") {
		t.Errorf("module defining without memory at start: taint %q, last error %q", st.Taint, st.LastError)
	}
	_, err = h.Load(context.Background(), startTraps("starttrap"))
	if !errors.Is(err, ErrTrap) {
		t.Fatalf("start that traps: %v", err)
	}
	if h.Module("starttrap") != nil {
		t.Error("module that died at start is listed")
	}
	// Its name is not reserved.
	if _, err := h.Load(context.Background(), bareModule("starttrap")); err != nil {
		t.Errorf("load after a failed load of the same name: %v", err)
	}
}

func TestMemorylessUnloadDead(t *testing.T) {
	h := newHost(t, WithUnloadDead())
	m, err := h.Load(context.Background(), memoryless("nomemdead"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(context.Background(), "trap", nil); !errors.Is(err, ErrTrap) {
		t.Fatal(err)
	}
	// UnloadDead unloads from another goroutine; Unload waits for it or
	// finds it done.
	if err := m.Unload(context.Background(), true); err != nil && !errors.Is(err, ErrUnloaded) {
		t.Fatal(err)
	}
	if h.Module("nomemdead") != nil {
		t.Error("dead module still listed")
	}
}

func TestMemorylessForceUnloadDuringCall(t *testing.T) {
	h := newHost(t, WithLimits(Limits{CallTimeout: time.Minute}))
	m, err := h.Load(context.Background(), memoryless("nomemspin"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := m.Call(context.Background(), "spin", nil)
		done <- err
	}()
	// Whether the call has started (it is stopped) or not (it finds the
	// module gone), it fails with ErrUnloaded.
	if err := m.Unload(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrUnloaded) {
		t.Errorf("call: %v, want ErrUnloaded", err)
	}
}

// Files that lie about their size or never end are refused without
// reading more than the limit.
func TestLoadFileLyingSize(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	h := newHost(t, WithLimits(Limits{MaxModuleBytes: 1 << 20}))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := h.LoadFile(context.Background(), "/proc/self/pagemap")
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooBig) {
		t.Fatalf("pagemap: %v, want ErrTooBig", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
		t.Errorf("loading pagemap allocated %d bytes, limit %d", got, 1<<20)
	}
	if len(h.List()) != 0 {
		t.Error("something was loaded")
	}
}
