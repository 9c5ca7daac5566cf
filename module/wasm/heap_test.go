package wasm

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// Unloading a module gives its memory back, the compiled code included:
// 50 cycles of loading and unloading distinct modules of about 1 MB leave
// the heap as it was.
func TestUnloadGivesMemoryBack(t *testing.T) {
	if testing.Short() {
		t.Skip("50 loads")
	}
	base := straightCode("cycle", 30_000, 10)
	h := newHost(t)
	cycle := func(i int) {
		// Another custom section makes each module's code distinct: no
		// two share a compilation.
		w := wasmbin.AppendCustom(append([]byte{}, base...), fmt.Sprintf("cycle.%d", i), []byte{1})
		m, err := h.Load(context.Background(), w)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Unload(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	heap := heapInUse
	cycle(-1) // first use: the host's own allocations
	before := heap()
	const n = 50
	for i := range n {
		cycle(i)
	}
	after := heap()
	grew := int64(after) - int64(before)
	t.Logf("heap in use %d MiB before, %d MiB after %d cycles of %d KB modules", before>>20, after>>20, n, len(base)>>10)
	// One module's worth of slack; a leak keeps them all.
	if grew > int64(len(base))*2 {
		t.Errorf("heap grew %d bytes over %d load/unload cycles (%d bytes per cycle)", grew, n, grew/n)
	}
}

// A load that fails after compiling (the start function traps) gives the
// compiled code back too.
func TestFailedLoadGivesMemoryBack(t *testing.T) {
	if testing.Short() {
		t.Skip("50 loads")
	}
	b := wasmbin.NewBuilder()
	body := make([]byte, 0, 90_000)
	for range 30_000 {
		body = append(body, wasmbin.OpI32Const, 0, wasmbin.OpDrop)
	}
	for range 9 {
		b.Func(sigVoid, nil, body)
	}
	b.Start(b.Func(sigVoid, nil, wasmbin.Op(wasmbin.OpUnreachable)))
	base := withModinfo(b.Bytes(), rawInfo("dies"))
	h := newHost(t)
	load := func(i int) {
		w := wasmbin.AppendCustom(append([]byte{}, base...), fmt.Sprintf("dies.%d", i), []byte{1})
		if _, err := h.Load(context.Background(), w); !errors.Is(err, ErrTrap) {
			t.Fatalf("load: %v, want ErrTrap", err)
		}
	}
	load(-1)
	before := heapInUse()
	const n = 50
	for i := range n {
		load(i)
	}
	grew := int64(heapInUse()) - int64(before)
	t.Logf("heap grew %d KiB over %d failed loads of %d KB modules", grew>>10, n, len(base)>>10)
	if grew > int64(len(base))*2 {
		t.Errorf("heap grew %d bytes over %d failed loads (%d bytes per load)", grew, n, grew/n)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
