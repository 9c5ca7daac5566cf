package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

const (
	batchAt  = 8192  // the raw batcher's event buffer
	batchIn  = 32768 // and its input buffer
	opMemCpy = 0xfc
)

// batcher is a raw module with an event buffer of n bytes at ptr (what
// its tracemark_events returns) that defines raw:batch(n int64), handle
// 1, and writes whatever the test wants into its buffer: write copies
// its input over the buffer (header and records), write_flush does that
// and calls fire(0, 0, 0), write_trap does it and traps, flood does it
// 100 times (flushing each time) and once more without flushing.
func batcher(ptr, n uint32) []byte {
	b := wasmbin.NewBuilder()
	define := b.ImportFunc(module.ABINamespace, "define", sigDefine)
	fire := b.ImportFunc(module.ABINamespace, "fire", sigFire)
	b.Memory(1, 0)
	def := rawDefinition("raw:batch")
	b.Data(0, def)
	b.Start(b.Func(sigVoid, nil,
		wasmbin.I32Const(0), wasmbin.I32Const(int32(len(def))), wasmbin.Call(define), wasmbin.Op(wasmbin.OpDrop)))
	b.Export(module.ExportEvents, b.Func(wasmbin.Sig(nil, wasmbin.I64), nil, wasmbin.I64Const(int64(ptr)<<32|int64(n))))
	b.Export(module.ExportAlloc, b.Func(wasmbin.Sig([]byte{wasmbin.I32}, wasmbin.I32), nil, wasmbin.I32Const(batchIn)))
	// memory.copy(batchAt, in, len)
	cp := [][]byte{wasmbin.I32Const(batchAt), wasmbin.LocalGet(0), wasmbin.LocalGet(1), wasmbin.Op(opMemCpy, 10, 0, 0)}
	flush := [][]byte{wasmbin.I32Const(0), wasmbin.I32Const(0), wasmbin.I32Const(0), wasmbin.Call(fire), wasmbin.Op(wasmbin.OpDrop)}
	b.Export("write", b.Func(sigHook, nil, append(cp, wasmbin.I64Const(0))...))
	b.Export("write_flush", b.Func(sigHook, nil, append(append(cp, flush...), wasmbin.I64Const(0))...))
	b.Export("write_trap", b.Func(sigHook, nil, append(cp, wasmbin.Op(wasmbin.OpUnreachable))...))
	// locals: 2 = iterations left
	loop := [][]byte{wasmbin.I32Const(100), wasmbin.LocalSet(2),
		wasmbin.Op(wasmbin.OpBlock, wasmbin.BlockVoid, wasmbin.OpLoop, wasmbin.BlockVoid),
		wasmbin.LocalGet(2), wasmbin.Op(wasmbin.OpI32Eqz, wasmbin.OpBrIf, 1)}
	loop = append(append(append(loop, cp...), flush...),
		wasmbin.LocalGet(2), wasmbin.I32Const(1), wasmbin.Op(wasmbin.OpI32Sub), wasmbin.LocalSet(2),
		wasmbin.Op(wasmbin.OpBr, 0, wasmbin.OpEnd, wasmbin.OpEnd))
	loop = append(append(loop, cp...), wasmbin.I64Const(0))
	b.Export("flood", b.Func(sigHook, []byte{wasmbin.I32}, loop...))
	return withModinfo(b.Bytes(), rawInfo("batcher"))
}

// batch builds an event buffer's contents: header (record bytes and
// count, as given, or the true ones for -1) and records.
type batch struct {
	recs  []byte
	count int
}

func (b *batch) add(h uint32, args []byte) *batch {
	b.recs = binary.LittleEndian.AppendUint32(b.recs, h)
	b.recs = binary.LittleEndian.AppendUint32(b.recs, uint32(len(args)))
	b.recs = append(b.recs, args...)
	b.count++
	return b
}

func (b *batch) event(n int64) *batch {
	return b.add(1, binary.LittleEndian.AppendUint64(nil, uint64(n)))
}

func (b *batch) bytes(used, count int64) []byte {
	if used < 0 {
		used = int64(len(b.recs))
	}
	if count < 0 {
		count = int64(b.count)
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(used))
	out = binary.LittleEndian.AppendUint32(out, uint32(count))
	return append(out, b.recs...)
}

// TestBatchDelivery: records are delivered in order, at the module's
// flush and when its call returns, each once, and the buffer is empty
// after each.
func TestBatchDelivery(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, err := h.Load(context.Background(), batcher(batchAt, 4096))
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, "raw:batch")
	in := (&batch{}).event(1).event(2).event(3).bytes(-1, -1)
	for _, hook := range []string{"write", "write_flush"} {
		if _, err := m.Call(context.Background(), hook, in); err != nil {
			t.Fatalf("%s: %v", hook, err)
		}
	}
	var got []int64
	for _, e := range r.all() {
		got = append(got, e.fields[0].(int64))
	}
	if want := []int64{1, 2, 3, 1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if c := m.Status().Counters; c.Fired != 6 || c.Delivered != 6 || c.Dropped != 0 || c.Errors != 0 {
		t.Fatalf("counters %+v", c)
	}
	// The host emptied the buffer: a call that writes nothing delivers
	// nothing.
	if _, err := m.Call(context.Background(), "write", nil); err != nil {
		t.Fatal(err)
	}
	if r.count() != 6 {
		t.Fatalf("%d events after an empty call, want 6", r.count())
	}
}

// TestBatchCorrupt: a module that corrupts its event buffer gets the
// valid records before the corruption delivered, every other record it
// claims counted as dropped, an ABI violation, and keeps running.
func TestBatchCorrupt(t *testing.T) {
	valid := func() *batch { return (&batch{}).event(1).event(2) }
	tests := []struct {
		name      string
		buf       []byte
		delivered []int64
		fired     uint64 // = delivered + dropped
		kind      error
	}{
		{"used beyond the buffer", valid().bytes(5000, -1), nil, 2, ErrOutOfBounds},
		{"used beyond the buffer, huge count", valid().bytes(5000, 1<<31), nil, (4096 - 8) / 8, ErrOutOfBounds},
		{"record length beyond used", (&batch{}).event(1).add(1, make([]byte, 8)).bytes(30, -1), []int64{1}, 2, ErrMalformed},
		{"record length huge", hugeRecord(), nil, 1, ErrMalformed},
		{"truncated record header", append(valid().bytes(36, -1), 1, 0, 0, 0), []int64{1, 2}, 3, ErrMalformed},
		{"more records claimed", valid().bytes(-1, 5), []int64{1, 2}, 5, ErrMalformed},
		{"fewer records claimed", valid().bytes(-1, 1), []int64{1, 2}, 2, ErrMalformed},
		{"unknown handle", (&batch{}).event(1).add(7, make([]byte, 8)).event(3).bytes(-1, -1), []int64{1, 3}, 3, ErrUnknownMarker},
		{"handle 0", (&batch{}).add(0, make([]byte, 8)).event(3).bytes(-1, -1), []int64{3}, 2, ErrUnknownMarker},
		{"bad arguments", (&batch{}).event(1).add(1, make([]byte, 5)).event(3).bytes(-1, -1), []int64{1, 3}, 3, ErrMalformed},
	}
	for _, tt := range tests {
		for _, hook := range []string{"write", "write_flush"} {
			t.Run(tt.name+"/"+hook, func(t *testing.T) {
				h := newHost(t, WithLimits(Limits{EventRate: -1}))
				m, err := h.Load(context.Background(), batcher(batchAt, 4096), WithLoadPolicy(module.Open))
				if err != nil {
					t.Fatal(err)
				}
				r := record(t, "raw:batch")
				_, err = m.Call(context.Background(), hook, tt.buf)
				if !errors.Is(err, ErrABIViolation) || !errors.Is(err, tt.kind) {
					t.Fatalf("call error %v, want an ABI violation (%v)", err, tt.kind)
				}
				var got []int64
				for _, e := range r.all() {
					got = append(got, e.fields[0].(int64))
				}
				if !slices.Equal(got, tt.delivered) {
					t.Fatalf("delivered %v, want %v", got, tt.delivered)
				}
				c := m.Status().Counters
				if c.Fired != tt.fired || c.Delivered+c.Dropped != c.Fired || c.Delivered != uint64(len(tt.delivered)) {
					t.Fatalf("counters %+v, want %d fired = delivered + dropped", c, tt.fired)
				}
				// The module keeps working, with an empty buffer.
				if _, err := m.Call(context.Background(), "write", valid().bytes(-1, -1)); err != nil {
					t.Fatalf("after the corruption: %v", err)
				}
				if r.count() != len(tt.delivered)+2 {
					t.Fatalf("%d events after a valid call, want %d", r.count(), len(tt.delivered)+2)
				}
			})
		}
	}
}

// hugeRecord is a buffer whose one record claims nearly 4 GiB.
func hugeRecord() []byte {
	b := (&batch{}).event(1).bytes(-1, -1)
	binary.LittleEndian.PutUint32(b[12:], 0xffff_fff0)
	return b
}

// TestBatchBufferRefused: an event buffer outside memory, too small or
// too large is an ABI violation at load; the module's fire calls work.
func TestBatchBufferRefused(t *testing.T) {
	for _, bc := range []struct {
		name   string
		ptr, n uint32
		kind   error
	}{
		{"outside memory", 0xffff_0000, 4096, ErrOutOfBounds},
		{"straddles the end", 65536 - 100, 4096, ErrOutOfBounds},
		{"too small", batchAt, 15, ErrTooLarge},
		{"too large", batchAt, module.MaxEventBufferBytes + 1, ErrTooLarge},
	} {
		t.Run(bc.name, func(t *testing.T) {
			h := newHost(t, WithLimits(Limits{EventRate: -1}))
			m, err := h.Load(context.Background(), batcher(bc.ptr, bc.n), WithLoadPolicy(module.Open))
			if err != nil {
				t.Fatal(err)
			}
			st := m.Status()
			if st.Taint&module.TaintWarning == 0 || !strings.Contains(st.LastError, module.ExportEvents) {
				t.Fatalf("taint %s, last error %q", st.Taint, st.LastError)
			}
			r := record(t, "raw:batch")
			// Handle 0 is no flush without a buffer: an unknown marker.
			_, err = m.Call(context.Background(), "write_flush", (&batch{}).event(1).bytes(-1, -1))
			if !errors.Is(err, ErrUnknownMarker) || r.count() != 0 {
				t.Fatalf("flush without a buffer: %v, %d events", err, r.count())
			}
		})
	}
}

// TestBatchFlood: a module that floods its buffer (100 full flushes and
// a full buffer at return, over its budget) gets its budget's worth
// delivered and every other event counted as dropped.
func TestBatchFlood(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: 1e-9, EventBurst: 1000, Instances: 1}))
	m, err := h.Load(context.Background(), batcher(batchAt, 16384))
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, "raw:batch")
	b := &batch{}
	for i := range 16384/16 - 1 { // the buffer's worth of 16-byte records
		b.event(int64(i))
	}
	in := b.bytes(-1, -1)
	if len(in) > 16384 {
		t.Fatalf("test buffer of %d bytes", len(in))
	}
	if _, err := m.Call(context.Background(), "flood", in); err != nil {
		t.Fatal(err)
	}
	c := m.Status().Counters
	want := uint64(101 * b.count)
	if c.Fired != want || c.Delivered != 1000 || c.Dropped != want-1000 || uint64(r.count()) != c.Delivered {
		t.Fatalf("counters %+v, probe %d; want %d fired, 1000 delivered", c, r.count(), want)
	}
	if m.Status().Taint&module.TaintWarning != 0 {
		t.Fatal("flooding within the ABI is not a violation")
	}
}

// TestBatchRefused: records of a marker that policy refuses reach no
// probe, even from a module that writes its own flags and buffer.
func TestBatchRefused(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, err := h.Load(context.Background(), batcher(batchAt, 4096))
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, "raw:batch")
	m.TaintUser("refuse it") // the default policy refuses U
	if _, err := m.Call(context.Background(), "write_flush", (&batch{}).event(1).event(2).bytes(-1, -1)); err != nil {
		t.Fatal(err)
	}
	if c := m.Status().Counters; r.count() != 0 || c.Fired != 2 || c.Delivered != 0 {
		t.Fatalf("refused marker: probe got %d, counters %+v", r.count(), c)
	}
}

// TestBatchGoGuest: the Go SDK batches (its events reach the host in
// fewer host calls than events), keeps their order across flushes, and
// (TestHostileModules' panic after fire checks that the host delivers
// what the module batched before a trap).
func TestBatchGoGuest(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, err := h.Load(context.Background(), hostileWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, "hostile:event")
	i, err := m.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	batching := i.events.n != 0
	m.pool.put(i)
	if !batching {
		t.Fatal("the Go guest gave no event buffer")
	}
	const n = 5000 // several flushes of the SDK's 64 KiB buffer
	if _, err := m.Call(context.Background(), "flood", []byte(strconv.Itoa(n))); err != nil {
		t.Fatal(err)
	}
	evs := r.all()
	if len(evs) != n {
		t.Fatalf("%d events, want %d", len(evs), n)
	}
	for i, e := range evs {
		if e.fields[0] != "flood" || e.fields[1] != int64(i) {
			t.Fatalf("event %d is %v", i, e.fields)
		}
	}
	if c := m.Status().Counters; c.Fired != n || c.Delivered != n {
		t.Fatalf("counters %+v", c)
	}
}

// TestWithoutEventBuffer: a module loaded WithoutEventBuffer fires each
// event with a host call, and its events arrive as before.
func TestWithoutEventBuffer(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, err := h.Load(context.Background(), hostileWasm(t), WithoutEventBuffer())
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, "hostile:event")
	if _, err := m.Call(context.Background(), "flood", []byte("10")); err != nil {
		t.Fatal(err)
	}
	i, err := m.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	batching := i.events.n != 0
	m.pool.put(i)
	if batching || r.count() != 10 {
		t.Fatalf("event buffer taken: %v; %d events, want 10", batching, r.count())
	}
}

// TestBatchTrap: what a module batched before it trapped is delivered,
// checked as ever, and the module dies.
func TestBatchTrap(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, err := h.Load(context.Background(), batcher(batchAt, 4096))
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, "raw:batch")
	_, err = m.Call(context.Background(), "write_trap", (&batch{}).event(1).event(2).add(9, nil).bytes(-1, -1))
	if !errors.Is(err, ErrTrap) {
		t.Fatalf("call error %v, want a trap", err)
	}
	if r.count() != 2 || m.Status().State != StateDead {
		t.Fatalf("%d events, state %v; want 2, dead", r.count(), m.Status().State)
	}
	if c := m.Status().Counters; c.Fired != 3 || c.Delivered != 2 || c.Dropped != 1 {
		t.Fatalf("counters %+v, want 3 fired, 2 delivered, 1 dropped", c)
	}
}

// exiter is a raw module with the batcher's event buffer and raw:batch
// marker whose hooks call WASI proc_exit(3), as a Go guest's os.Exit or a
// C guest's exit() does: write_exit copies its input over the event
// buffer first, exit batches nothing. wazero closes the module inside
// the call there, before the host drains the buffer.
func exiter() []byte {
	b := wasmbin.NewBuilder()
	define := b.ImportFunc(module.ABINamespace, "define", sigDefine)
	exit := b.ImportFunc("wasi_snapshot_preview1", "proc_exit", wasmbin.Sig([]byte{wasmbin.I32}))
	b.Memory(1, 0)
	def := rawDefinition("raw:batch")
	b.Data(0, def)
	b.Start(b.Func(sigVoid, nil,
		wasmbin.I32Const(0), wasmbin.I32Const(int32(len(def))), wasmbin.Call(define), wasmbin.Op(wasmbin.OpDrop)))
	b.Export(module.ExportEvents, b.Func(wasmbin.Sig(nil, wasmbin.I64), nil, wasmbin.I64Const(int64(batchAt)<<32|4096)))
	b.Export(module.ExportAlloc, b.Func(wasmbin.Sig([]byte{wasmbin.I32}, wasmbin.I32), nil, wasmbin.I32Const(batchIn)))
	cp := [][]byte{wasmbin.I32Const(batchAt), wasmbin.LocalGet(0), wasmbin.LocalGet(1), wasmbin.Op(opMemCpy, 10, 0, 0)}
	procExit := [][]byte{wasmbin.I32Const(3), wasmbin.Call(exit), wasmbin.I64Const(0)}
	b.Export("write_exit", b.Func(sigHook, nil, append(cp, procExit...)...))
	b.Export("exit", b.Func(sigHook, nil, procExit...))
	return withModinfo(b.Bytes(), rawInfo("exiter"))
}

// callExit calls hook of a new exiter with input in and checks that the
// call fails with the module's exit status, that the module is dead and
// unloads, and that the host still loads and runs modules; it returns the
// events delivered.
func callExit(t *testing.T, hook string, in []byte) []recorded {
	t.Helper()
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, err := h.Load(context.Background(), exiter())
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, "raw:batch")
	_, err = m.Call(context.Background(), hook, in)
	if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "exited with status 3") {
		t.Fatalf("%s: error %v, want a trap: exited with status 3", hook, err)
	}
	if s := m.Status().State; s != StateDead {
		t.Fatalf("%s: module %v after it exited, want dead", hook, s)
	}
	if _, err := m.Call(context.Background(), hook, in); !errors.Is(err, ErrDead) {
		t.Fatalf("%s: a call after the exit: %v, want ErrDead", hook, err)
	}
	// Forced: the recorder's probe is connected to raw:batch.
	if err := m.Unload(context.Background(), true); err != nil {
		t.Fatalf("unloading the exited module: %v", err)
	}
	// The host is unharmed: another module loads and runs.
	o, err := h.Load(context.Background(), batcher(batchAt, 4096))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Call(context.Background(), "write", (&batch{}).event(7).bytes(-1, -1)); err != nil {
		t.Fatal(err)
	}
	evs := r.all()
	if len(evs) == 0 || evs[len(evs)-1].fields[0] != int64(7) {
		t.Fatalf("events %v: the other module's is not last", evs)
	}
	return evs[:len(evs)-1]
}

// TestBatchExit: a module that exits (WASI proc_exit) during a call, its
// event buffer full, dies with its exit status, and what it batched
// before it exited is delivered, as for a trap: the host reads its
// memory after wazero closed the module, which must not unmap it.
func TestBatchExit(t *testing.T) {
	evs := callExit(t, "write_exit", (&batch{}).event(1).event(2).bytes(-1, -1))
	var got []int64
	for _, e := range evs {
		got = append(got, e.fields[0].(int64))
	}
	if want := []int64{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

// TestExitNoEvents: a module that exits during a call with nothing
// batched dies with its exit status.
func TestExitNoEvents(t *testing.T) {
	if evs := callExit(t, "exit", nil); len(evs) != 0 {
		t.Fatalf("delivered %v, want nothing", evs)
	}
}
