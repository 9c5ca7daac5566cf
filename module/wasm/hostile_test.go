package wasm

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// hostPing is a host marker that keeps firing while modules misbehave, to
// check that the host loses no events.
var hostPing = marker.Define1("hosttest:ping", marker.Int64("n"))

// keepFiring fires hostPing from another goroutine until stop is called,
// and then checks that a probe received every event.
func keepFiring(t *testing.T) (stop func()) {
	t.Helper()
	var got atomic.Int64
	p, err := marker.Register("hosttest:ping", func(*marker.Event) { got.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var sent int64
	var wg sync.WaitGroup
	wg.Add(1)
	started := make(chan struct{})
	go func() {
		hostPing.Fire(sent)
		sent++
		close(started)
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			hostPing.Fire(sent)
			sent++
			if sent%64 == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	<-started
	return func() {
		close(done)
		wg.Wait()
		p.Unregister()
		if got.Load() != sent || sent == 0 {
			t.Errorf("host fired %d events during the misbehaviour, probe got %d", sent, got.Load())
		}
	}
}

// checkDead checks the state of a module that died with flag.
func checkDead(t *testing.T, m *Module, taint string) {
	t.Helper()
	st := m.Status()
	if st.State != StateDead {
		t.Errorf("state = %v, want dead", st.State)
	}
	if st.Taint.String() != taint {
		t.Errorf("module taint = %q, want %q", st.Taint, taint)
	}
	for _, mk := range st.Markers {
		if !strings.Contains(mk.Refused, "is dead") {
			t.Errorf("marker %s refused %q, want the death", mk.Name, mk.Refused)
		}
	}
	if _, err := m.Call(context.Background(), "echo", nil); !errors.Is(err, ErrDead) {
		t.Errorf("call after death: %v, want ErrDead", err)
	}
	if got := module.Tainted().String(); !containsAll(got, taint) {
		t.Errorf("process taint %q lacks %q", got, taint)
	}
}

func containsAll(s, letters string) bool {
	for _, c := range letters {
		if !strings.ContainsRune(s, c) {
			return false
		}
	}
	return true
}

// The hostile module is GPL, unsigned and loaded from bytes: it loads
// tainted O and E, and each case adds what its misbehaviour earns.
func TestHostileDeaths(t *testing.T) {
	tests := []struct {
		name    string
		export  string
		limits  Limits
		wantErr error
		wantMsg string
		taint   string
		maxTime time.Duration
	}{
		{name: "infinite loop", export: "loop", limits: Limits{CallTimeout: 50 * time.Millisecond},
			wantErr: ErrDeadline, wantMsg: "overran its deadline (50ms); the module was killed", taint: "OEL", maxTime: 2 * time.Second},
		{name: "sleep past the deadline", export: "sleep", limits: Limits{CallTimeout: 50 * time.Millisecond},
			wantErr: ErrDeadline, wantMsg: "overran its deadline", taint: "OEL", maxTime: 2 * time.Second},
		{name: "memory bomb", export: "grow", limits: Limits{MemoryPages: 256, CallTimeout: 10 * time.Second},
			wantErr: ErrTrap, wantMsg: "module died: wasm error: unreachable: fatal error: out of memory", taint: "DOE", maxTime: 10 * time.Second},
		{name: "panic after fire", export: "panic_after_fire",
			wantErr: ErrTrap, wantMsg: "module died: wasm error: unreachable: panic: hostile module gives up", taint: "DOE", maxTime: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, WithLimits(tt.limits))
			rec := record(t, "hostile:event")
			m, err := h.Load(context.Background(), hostileWasm(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Status().Taint.String(); got != "OE" {
				t.Fatalf("load taint = %q, want OE", got)
			}
			stop := keepFiring(t)
			start := time.Now()
			_, err = m.Call(context.Background(), tt.export, nil)
			took := time.Since(start)
			stop()
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
			if took > tt.maxTime {
				t.Errorf("call took %v, want at most %v", took, tt.maxTime)
			}
			checkDead(t, m, tt.taint)
			if tt.limits.MemoryPages > 0 && m.Status().MemoryPages > tt.limits.MemoryPages {
				t.Errorf("module memory %d pages, over the cap of %d", m.Status().MemoryPages, tt.limits.MemoryPages)
			}
			if tt.export == "panic_after_fire" {
				if evs := rec.all(); len(evs) != 1 || evs[0].fields[0] != "last words" {
					t.Errorf("events before the panic: %+v, want the last words", evs)
				}
			}
			if st := m.Status(); st.LastError != err.Error() || st.Counters.Errors != 1 {
				t.Errorf("status last error %q errors %d, want the call's error once", st.LastError, st.Counters.Errors)
			}
		})
	}
}

func TestTrapInFire(t *testing.T) {
	h := newHost(t)
	rec := record(t, "raw:event")
	m, err := h.Load(context.Background(), trapInFire())
	if err != nil {
		t.Fatal(err)
	}
	stop := keepFiring(t)
	_, err = m.Call(context.Background(), "trap_in_fire", nil)
	stop()
	if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "module died: wasm error: unreachable") {
		t.Fatalf("error = %v, want ErrTrap from unreachable", err)
	}
	checkDead(t, m, "DOE")
	if evs := rec.all(); len(evs) != 1 || evs[0].fields[0] != int64(7) {
		t.Errorf("events = %+v, want the one fired before the trap", evs)
	}
}

// A probe that panics inside a module's fire is cut off by the marker
// package; the module is not blamed and the process is tainted W.
func TestProbePanicsInModuleFire(t *testing.T) {
	h := newHost(t)
	p, err := marker.Register("hostile:event", func(*marker.Event) { panic("probe bug") })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	m, err := h.Load(context.Background(), hostileWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(context.Background(), "flood", []byte("3")); err != nil {
		t.Fatal(err)
	}
	if p.Active() || p.Fault() == nil {
		t.Error("panicking probe was not cut off")
	}
	if st := m.Status(); st.State != StateLive || st.Taint.String() != "OE" {
		t.Errorf("module %v %q, want live OE", st.State, st.Taint)
	}
	if !strings.Contains(module.Tainted().String(), "W") {
		t.Errorf("process taint %q lacks W", module.Tainted())
	}
}

func TestMemoryOverCapAtStart(t *testing.T) {
	b := wasmbin.NewBuilder()
	b.Memory(100, 0)
	h := newHost(t, WithLimits(Limits{MemoryPages: 20}))
	_, err := h.Load(context.Background(), withModinfo(b.Bytes(), rawInfo("big")), WithForce())
	if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "it needs 100 pages at start, the limit is 20") {
		t.Errorf("error = %v", err)
	}
}

func TestMemoryCapRawModule(t *testing.T) {
	h := newHost(t, WithLimits(Limits{MemoryPages: 20}))
	m, err := h.Load(context.Background(), growBomb())
	if err != nil {
		t.Fatal(err)
	}
	// The hook returns memory.size as its output word: 20 bytes at 0.
	out, err := m.Call(context.Background(), "grow", nil)
	if err != nil || len(out) != 20 {
		t.Errorf("grow: %d pages, %v; want 20 pages", len(out), err)
	}
	if got := m.Status().MemoryPages; got != 20 {
		t.Errorf("memory grew to %d pages, cap 20", got)
	}
	if st := m.Status(); st.State != StateLive || st.Taint.String() != "OE" {
		t.Errorf("a module that handles memory.grow failing is not at fault: %v %q", st.State, st.Taint)
	}
}

// Garbage argument encodings: the host refuses the event, the module gets
// the error code, the call fails with the exact error, and the module is
// tainted W; the default policy then refuses its markers, open does not.
func TestGarbageArguments(t *testing.T) {
	tests := []struct {
		name    string
		code    string
		wantErr error
		wantMsg string
	}{
		{"valid", "0", nil, ""},
		{"truncated_string", "-2", ErrMalformed, `hostile:event: field 0 "s" (string): length 5 beyond the end of the buffer`},
		{"truncated_int", "-2", ErrMalformed, `hostile:event: field 1 "n" (int64): truncated`},
		{"trailing", "-2", ErrMalformed, "hostile:event: 1 bytes after the last field"},
		{"utf8", "-4", ErrInvalidUTF8, `hostile:strict: field 0 "s" (string): string is not valid UTF-8`},
		{"utf8_lenient", "0", nil, ""},
		{"oversized", "-5", ErrTooLarge, `field 0 "s" (string): 5000 bytes, limit 4096`},
		{"huge_length", "-5", ErrTooLarge, "4294967295 bytes, limit 4096"},
		{"bad_bool", "-2", ErrMalformed, `hostile:more: field 4 "e" (bool): bool is 2, not 0 or 1`},
		{"unknown_marker", "-3", ErrUnknownMarker, "fire with handle 99; the module defined 4 markers"},
		{"negative_handle", "-3", ErrUnknownMarker, "fire with handle -1"},
		{"out_of_bounds", "-1", ErrOutOfBounds, "hostile:event: arguments at 0xfffffff0+100 outside memory"},
		{"args_too_big", "-5", ErrTooLarge, "argument buffer of 1048576 bytes, limit 65536"},
	}
	for _, policy := range []module.Policy{module.PolicyDefault, module.Open} {
		for _, tt := range tests {
			t.Run(policy.String()+"/"+tt.name, func(t *testing.T) {
				h := newHost(t, WithPolicy(policy))
				rec := record(t, "hostile:*")
				m, err := h.Load(context.Background(), hostileWasm(t))
				if err != nil {
					t.Fatal(err)
				}
				stop := keepFiring(t)
				out, err := m.Call(context.Background(), "garbage", []byte(tt.name))
				stop()
				if string(out) != tt.code {
					t.Errorf("result code %q, want %s", out, tt.code)
				}
				st := m.Status()
				if tt.wantErr == nil {
					if err != nil || st.Taint.String() != "OE" || rec.count() != 1 {
						t.Fatalf("valid fire: err %v taint %q events %d", err, st.Taint, rec.count())
					}
					want := map[string]string{"valid": "ok", "utf8_lenient": "a\uFFFDb"}[tt.name]
					if got := rec.all()[0].fields[0]; got != want {
						t.Errorf("delivered %q, want %q", got, want)
					}
					return
				}
				if !errors.Is(err, ErrABIViolation) || !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("error = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
				}
				if rec.count() != 0 {
					t.Errorf("garbage delivered %d events", rec.count())
				}
				if st.Taint.String() != "WOE" || st.Counters.Errors != 1 || st.LastError != err.Error() {
					t.Errorf("taint %q errors %d last %q, want WOE, 1, the error", st.Taint, st.Counters.Errors, st.LastError)
				}
				wantState := StateRefused
				if policy == module.Open {
					wantState = StateLive
				}
				if st.State != wantState {
					t.Errorf("state %v under %v, want %v", st.State, policy, wantState)
				}
				for _, mk := range st.Markers {
					if refused := mk.Refused != ""; refused != (wantState == StateRefused) {
						t.Errorf("marker %s refused %q in state %v", mk.Name, mk.Refused, wantState)
					}
				}
				// The module still works.
				if out, err := m.Call(context.Background(), "echo", []byte("hi")); err != nil || string(out) != "echo:hi" {
					t.Errorf("echo after garbage: %q %v", out, err)
				}
			})
		}
	}
}

func TestBadDefinitions(t *testing.T) {
	tests := []struct {
		name    string
		code    string
		wantErr error
		wantMsg string
	}{
		{"valid", "5", nil, ""},
		{"truncated", "-2", ErrMalformed, "define: truncated name"},
		{"bad_kind", "-2", ErrMalformed, "define: hostile:x: field 0 has unknown kind code 99"},
		{"bad_name", "-2", ErrBadDefinition, `define: marker "Bad Name"`},
		{"utf8", "-4", ErrInvalidUTF8, "define: name is not valid UTF-8"},
		{"host_marker", "-6", ErrMarkerExists, "define: hosttest:ping belongs to the host or another module"},
		{"redefine", "-6", ErrMarkerExists, "define: hostile:event redefined with another schema"},
		{"trailing", "-2", ErrMalformed, "define: hostile:y: 1 bytes after the definition"},
		{"doc_control", "-2", ErrMalformed, "define: hostile:z: doc contains control character U+001B"},
		{"out_of_bounds", "-1", ErrOutOfBounds, "define: buffer at 0xfffffff0+100 outside memory"},
		{"too_many", "-7", ErrTooManyMarkers, "define: hostile:m6 would be marker 11, limit 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, WithLimits(Limits{MaxMarkers: 10}))
			m, err := h.Load(context.Background(), hostileWasm(t))
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Call(context.Background(), "bad_define", []byte(tt.name))
			if string(out) != tt.code {
				t.Errorf("result code %q, want %s", out, tt.code)
			}
			st := m.Status()
			if tt.wantErr == nil {
				if err != nil || st.Taint.String() != "OE" || len(st.Markers) != 5 || st.Markers[4].Name != "hostile:extra" {
					t.Errorf("valid define: err %v taint %q markers %+v", err, st.Taint, st.Markers)
				}
				return
			}
			if !errors.Is(err, ErrABIViolation) || !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
			if st.Taint.String() != "WOE" || st.State != StateRefused {
				t.Errorf("taint %q state %v, want WOE refused", st.Taint, st.State)
			}
			if info := marker.Lookup("hosttest:ping"); info == nil || info.Module().Path == "hostile" {
				t.Error("the module took over a host marker")
			}
		})
	}
}

func TestOutputOutOfBounds(t *testing.T) {
	h := newHost(t)
	m, err := h.Load(context.Background(), hostileWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Call(context.Background(), "output_oob", nil)
	if !errors.Is(err, ErrOutOfBounds) || !strings.Contains(err.Error(), "output_oob returned 1000 bytes of output at 0xffffff00, outside memory") {
		t.Fatalf("error = %v", err)
	}
	if got := m.Status().Taint.String(); got != "WOE" {
		t.Errorf("taint %q, want WOE", got)
	}
}

func TestEventFlood(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: 1000, EventBurst: 100, CallTimeout: 10 * time.Second}))
	rec := record(t, "hostile:event")
	m, err := h.Load(context.Background(), hostileWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	start := time.Now()
	if _, err := m.Call(context.Background(), "flood", []byte("100000")); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("%d events in %v", n, took)
	st := m.Status()
	c := st.Counters
	if c.Fired != n || c.Delivered+c.Dropped != n {
		t.Errorf("fired %d delivered %d dropped %d, want %d in all", c.Fired, c.Delivered, c.Dropped, n)
	}
	if uint64(rec.count()) != c.Delivered {
		t.Errorf("probe got %d events, counters say %d delivered", rec.count(), c.Delivered)
	}
	// The burst, plus at most the rate over the call (and some slack).
	if max := 100 + uint64(took.Seconds()*1000) + 10; c.Delivered < 100 || c.Delivered > max {
		t.Errorf("delivered %d in %v, want between 100 and %d", c.Delivered, took, max)
	}
	if st.Taint.String() != "OE" || st.State != StateLive || c.Errors != 0 {
		t.Errorf("flooding is not a fault: taint %q state %v errors %d", st.Taint, st.State, c.Errors)
	}
	if hs := h.Stats(); hs.Dropped != c.Dropped || hs.Delivered != c.Delivered {
		t.Errorf("host stats %+v, module counters %+v", hs, c)
	}
	// No probe: nothing counts against the budget, and the Go module's
	// enabled flags keep its events from reaching the host at all.
	rec.probe.Unregister()
	if _, err := m.Call(context.Background(), "flood", []byte("1000")); err != nil {
		t.Fatal(err)
	}
	if c2 := m.Status().Counters; c2.Dropped != c.Dropped || c2.Fired != n {
		t.Errorf("without probes: %+v", c2)
	}
}

func TestStartFunctionLoops(t *testing.T) {
	h := newHost(t, WithLimits(Limits{InitTimeout: 100 * time.Millisecond}))
	_, err := h.Load(context.Background(), startLoop())
	if !errors.Is(err, ErrDeadline) || !strings.Contains(err.Error(), "loading module spin: instantiating: module call overran its deadline (100ms)") {
		t.Fatalf("error = %v", err)
	}
	if h.Module("spin") != nil || len(h.List()) != 0 {
		t.Error("a module that never finished loading is listed")
	}
	if !strings.Contains(module.Tainted().String(), "L") {
		t.Errorf("process taint %q lacks L", module.Tainted())
	}
	var found bool
	for _, r := range module.TaintLog() {
		found = found || (r.Module == "spin" && r.Flag == module.TaintOverran)
	}
	if !found {
		t.Error("taint log does not say spin overran")
	}
}

func TestABIMismatch(t *testing.T) {
	h := newHost(t)
	wasm := otherABI(rawInfo("future"))
	_, err := h.Load(context.Background(), wasm)
	if !errors.Is(err, module.ErrABIMismatch) || !strings.Contains(err.Error(), "tracemark_v2.fire: unknown ABI namespace") {
		t.Fatalf("error = %v", err)
	}
	if h.Module("future") != nil {
		t.Fatal("refused module is listed")
	}
	m, err := h.Load(context.Background(), wasm, WithForce())
	if err != nil {
		t.Fatal(err)
	}
	st := m.Status()
	if st.Taint.String() != "FOE" || st.State != StateRefused || !strings.Contains(st.Forced, "tracemark_v2.fire") {
		t.Errorf("forced module: taint %q state %v forced %q, want FOE refused", st.Taint, st.State, st.Forced)
	}
	// Calling what the host does not provide traps.
	_, err = m.Call(context.Background(), "hook", nil)
	if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "tracemark_v2.fire: the host does not provide this function") {
		t.Fatalf("error = %v", err)
	}
	checkDead(t, m, "FDOE")
	if !containsAll(module.Tainted().String(), "FD") {
		t.Errorf("process taint %q", module.Tainted())
	}
}

func TestMetadata(t *testing.T) {
	huge := quiet(nil)
	huge = appendCustom(huge, module.SectionModinfo, []byte("name=huge\x00abi=1\x00description="+strings.Repeat("x", 1<<20)+"\x00"))
	tests := []struct {
		name    string
		wasm    []byte
		force   bool
		wantErr error
		wantMsg string
		taint   string
		modName string
	}{
		{"absent", quiet(nil), false, module.ErrABIMismatch, "ABI version unknown: no module metadata", "", ""},
		{"absent forced", quiet(nil), true, nil, "", "PFOE", "nameless"},
		{"abi 2", quiet(&module.Modinfo{Name: "two", ABI: 2, License: "MIT"}), false, module.ErrABIMismatch, "built for ABI v2, the host offers v1", "", ""},
		{"abi 2 forced", quiet(&module.Modinfo{Name: "two", ABI: 2, License: "MIT"}), true, nil, "", "FOE", "two"},
		{"malformed", appendCustom(quiet(nil), module.SectionModinfo, []byte("name=x\x00abi\x00")), false, module.ErrBadModinfo, "entry 2 has no '='", "", ""},
		{"malformed forced", appendCustom(quiet(nil), module.SectionModinfo, []byte("name=x\x00abi\x00")), true, module.ErrBadModinfo, "entry 2 has no '='", "", ""},
		{"huge", huge, true, module.ErrBadModinfo, "section of 1048605 bytes is over the limit of 16384", "", ""},
		{"twice", appendCustom(quiet(rawInfo("a")), module.SectionModinfo, []byte("name=b\x00abi=1\x00")), true, module.ErrBadModinfo, "more than one tracemark.modinfo section", "", ""},
		{"no licence", quiet(&module.Modinfo{Name: "nolic", ABI: 1}), false, nil, "", "POE", "nolic"},
		{"not wasm", []byte("\x7fELF garbage"), true, module.ErrNotWasm, "no wasm magic number", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t)
			m, err := h.Load(context.Background(), tt.wasm, force(tt.force), WithName("nameless"))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("error = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
				}
				if len(h.List()) != 0 {
					t.Error("refused module is listed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st := m.Status(); st.Taint.String() != tt.taint || st.Name != tt.modName {
				t.Errorf("module %q taint %q, want %q %q", st.Name, st.Taint, tt.modName, tt.taint)
			}
		})
	}
}

func appendCustom(wasm []byte, name string, payload []byte) []byte {
	p := append([]byte{byte(len(name))}, name...)
	p = append(p, payload...)
	out := append([]byte{}, wasm...)
	out = append(out, 0)
	for v := uint32(len(p)); ; v >>= 7 {
		if v < 0x80 {
			out = append(out, byte(v))
			break
		}
		out = append(out, byte(v)|0x80)
	}
	return append(out, p...)
}

// force is WithForce if f, else no option.
func force(f bool) LoadOption {
	if f {
		return WithForce()
	}
	return nil
}

// AppendCall appends the hook's output to dst, in dst's array while it has
// room (so a reused buffer makes no garbage), and gives dst back as it
// was when the call fails.
func TestAppendCall(t *testing.T) {
	h := newHost(t)
	m, err := h.Load(context.Background(), hostileWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	out, err := m.AppendCall(context.Background(), append(buf, "> "...), "echo", []byte("hi"))
	if err != nil || string(out) != "> echo:hi" || &out[0] != &buf[:1][0] {
		t.Fatalf("AppendCall = %q, %v (in dst's array: %v), want \"> echo:hi\" in it", out, err, len(out) > 0 && &out[0] == &buf[:1][0])
	}
	in := []byte("hi")
	if allocs := testing.AllocsPerRun(100, func() {
		out, err = m.AppendCall(context.Background(), out[:0], "echo", in)
	}); allocs != 0 || err != nil {
		t.Errorf("AppendCall into a reused buffer: %v allocations a call, %v", allocs, err)
	}
	kept, err := m.AppendCall(context.Background(), append(buf[:0], "kept"...), "no_such_hook", nil)
	if !errors.Is(err, ErrNoExport) || string(kept) != "kept" {
		t.Errorf("AppendCall of a missing hook = %q, %v; want dst and ErrNoExport", kept, err)
	}
}
