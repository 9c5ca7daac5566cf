package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
)

func TestPlugin(t *testing.T) {
	h := newHost(t)
	rec := record(t, "classifier:*")
	m, err := h.LoadFile(context.Background(), pluginPath(t))
	if err != nil {
		t.Fatal(err)
	}
	// Its markers are in the registry, attributed to the module.
	var names []string
	for info := range marker.All() {
		if info.Module().Path == "classifier" {
			names = append(names, info.String())
			if info.Module().Version != "v1.0.0" || info.Refused() != "" {
				t.Errorf("%s: module %v refused %q", info.Name(), info.Module(), info.Refused())
			}
		}
	}
	want := []string{"classifier:classified(category=%s score=%d seen=%u)", "classifier:suspicious(method=%s path=%s reason=%s)"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("markers %q, want %q", names, want)
	}
	if info := marker.Lookup("classifier:classified"); info.Stability() != marker.Stable || !strings.HasPrefix(info.Doc(), "a request was classified") {
		t.Errorf("stability %v doc %q", info.Stability(), info.Doc())
	}
	for _, req := range []struct{ in, out string }{
		{"GET /api/users", "api"},
		{"POST /api/users", "api"},
		{"GET /healthz", "health"},
		{"GET /../../etc/passwd", "suspicious"},
		{"GET /api/orders", "api"},
	} {
		out, err := m.Call(context.Background(), "on_request", []byte(req.in))
		if err != nil || string(out) != req.out {
			t.Errorf("%s: %q %v, want %q", req.in, out, err, req.out)
		}
	}
	got := rec.all()
	wantEvents := []recorded{
		{"classifier:classified", marker.Module{Path: "classifier", Version: "v1.0.0"}, []any{"api", int64(30), uint64(1)}},
		{"classifier:classified", marker.Module{Path: "classifier", Version: "v1.0.0"}, []any{"api", int64(40), uint64(2)}},
		{"classifier:classified", marker.Module{Path: "classifier", Version: "v1.0.0"}, []any{"health", int64(0), uint64(1)}},
		{"classifier:suspicious", marker.Module{Path: "classifier", Version: "v1.0.0"}, []any{"GET", "/../../etc/passwd", "path traversal"}},
		{"classifier:classified", marker.Module{Path: "classifier", Version: "v1.0.0"}, []any{"suspicious", int64(100), uint64(1)}},
		{"classifier:classified", marker.Module{Path: "classifier", Version: "v1.0.0"}, []any{"api", int64(30), uint64(3)}},
	}
	if len(got) != len(wantEvents) {
		t.Fatalf("events %+v", got)
	}
	for i := range got {
		if got[i].name != wantEvents[i].name || got[i].module != wantEvents[i].module || !equalFields(got[i].fields, wantEvents[i].fields) {
			t.Errorf("event %d = %+v, want %+v", i, got[i], wantEvents[i])
		}
	}

	// lsmod.
	st := m.Status()
	if st.Name != "classifier" || st.License != "Proprietary" || st.GPLCompatible || st.Signer != "unsigned" ||
		st.Taint.String() != "POE" || st.State != StateLive || st.Policy != module.Proprietary || st.Counters.Delivered != 6 || st.Counters.Calls != 5 {
		t.Errorf("status %+v", st)
	}
	table := h.List().String()
	for _, s := range []string{"classifier  v1.0.0   Proprietary  unsigned  POE    live   2        6", "classifier:classified  category=%s score=%d seen=%u"} {
		if !strings.Contains(table, s) {
			t.Errorf("lsmod output lacks %q:\n%s", s, table)
		}
	}
	js, err := json.Marshal(h.List())
	if err != nil || !bytes.Contains(js, []byte(`"taint":"POE"`)) || !bytes.Contains(js, []byte(`"state":"live"`)) {
		t.Errorf("JSON %s %v", js, err)
	}

	// Unload: markers gone, process taint stays.
	rec.probe.Unregister()
	if err := h.Unload(context.Background(), "classifier", false); err != nil {
		t.Fatal(err)
	}
	if marker.Lookup("classifier:classified") != nil {
		t.Error("markers survive unload")
	}
	if h.Module("classifier") != nil || len(h.List()) != 0 {
		t.Error("module listed after unload")
	}
	if got := module.Tainted().String(); !containsAll(got, "POE") {
		t.Errorf("process taint %q after unload, want POE to stay", got)
	}
	if _, err := m.Call(context.Background(), "on_request", []byte("GET /")); !errors.Is(err, ErrUnloaded) {
		t.Errorf("call after unload: %v", err)
	}
	// It can be loaded again.
	if _, err := h.LoadFile(context.Background(), pluginPath(t)); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

func equalFields(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEveryKind(t *testing.T) {
	h := newHost(t)
	rec := record(t, "hostile:*")
	m, err := h.Load(context.Background(), hostileWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(context.Background(), "fire_all", nil); err != nil {
		t.Fatal(err)
	}
	want := map[string][]any{
		"hostile:event": {"héllo", int64(-42)},
		"hostile:ints":  {int64(-8), int64(-16), int64(-32), int64(math.MinInt64), uint64(200), uint64(65535)},
		"hostile:more":  {uint64(4000000000), uint64(math.MaxUint64), 1.5, -2.25, true, 1500 * time.Millisecond},
		"hostile:vars":  {"x\uFFFDy", []byte{0, 1, 2}},
	}
	got := rec.all()
	if len(got) != len(want) {
		t.Fatalf("events %+v", got)
	}
	for _, ev := range got {
		w := want[ev.name]
		for i := range w {
			if b, ok := w[i].([]byte); ok {
				if !bytes.Equal(b, ev.fields[i].([]byte)) {
					t.Errorf("%s field %d = %v, want %v", ev.name, i, ev.fields[i], b)
				}
			} else if ev.fields[i] != w[i] {
				t.Errorf("%s field %d = %v (%T), want %v (%T)", ev.name, i, ev.fields[i], ev.fields[i], w[i], w[i])
			}
		}
	}
	if info := marker.Lookup("hostile:more"); info.Stability() != marker.Stable || info.Format() != "a=%u b=%u c=%g d=%g e=%t f=%v" {
		t.Errorf("hostile:more: %v %q", info.Stability(), info.Format())
	}
}

func TestSignatures(t *testing.T) {
	alice, _ := module.GenerateKey("alice", nil)
	mallory, _ := module.GenerateKey("mallory", nil)
	keys := module.Keyring{alice.Public()}
	plain := quiet(rawInfo("signed"))
	byAlice, err := module.Sign(plain, alice)
	if err != nil {
		t.Fatal(err)
	}
	byMallory, _ := module.Sign(plain, mallory)
	tampered := bytes.Clone(byAlice)
	tampered[bytes.Index(tampered, []byte("version=v0"))+9] = '1'

	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	trusted := t.TempDir()
	inTree := filepath.Join(trusted, "signed.wasm")
	os.WriteFile(inTree, byAlice, 0o644)

	tests := []struct {
		name    string
		path    string
		require bool
		taint   string
		signer  string
		wantErr error
	}{
		{"trusted key, in tree", inTree, false, "", "alice (" + alice.Public().Fingerprint() + ")", nil},
		{"trusted key, out of tree", write("a.wasm", byAlice), false, "O", "alice (" + alice.Public().Fingerprint() + ")", nil},
		{"unknown key", write("m.wasm", byMallory), false, "OE", "unknown key " + mallory.Public().Fingerprint(), nil},
		{"tampered after signing", write("t.wasm", tampered), false, "OE", "bad signature: signature by alice (" + alice.Public().Fingerprint() + ") does not match the module (changed after signing?)", nil},
		{"unsigned", write("u.wasm", plain), false, "OE", "unsigned", nil},
		{"unsigned, signature required", write("u2.wasm", plain), true, "", "", ErrSignatureRequired},
		{"unknown key, signature required", write("m2.wasm", byMallory), true, "", "", ErrSignatureRequired},
		{"tampered, signature required", write("t2.wasm", tampered), true, "", "", ErrSignatureRequired},
		{"trusted, signature required", write("a2.wasm", byAlice), true, "O", "alice (" + alice.Public().Fingerprint() + ")", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, WithKeys(keys), WithTrustedDir(trusted), requireSignature(tt.require))
			m, err := h.LoadFile(context.Background(), tt.path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st := m.Status(); st.Taint.String() != tt.taint || st.Signer != tt.signer {
				t.Errorf("taint %q signer %q, want %q %q", st.Taint, st.Signer, tt.taint, tt.signer)
			}
		})
	}
}

func TestUnload(t *testing.T) {
	h := newHost(t)
	m, err := h.Load(context.Background(), hostileWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := record(t, "hostile:event")
	err = m.Unload(context.Background(), false)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "probes are connected to hostile:event") {
		t.Fatalf("unload in use: %v", err)
	}
	if err := m.Unload(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if !rec.probe.Active() || len(rec.probe.Markers()) != 0 {
		t.Error("the probe should stay registered, connected to nothing")
	}
	if marker.Lookup("hostile:event") != nil {
		t.Error("markers survive a forced unload")
	}
	if got := m.Status().Taint.String(); got != "ROE" {
		t.Errorf("taint %q, want ROE", got)
	}
	if !strings.Contains(module.Tainted().String(), "R") {
		t.Errorf("process taint %q lacks R", module.Tainted())
	}
	if err := m.Unload(context.Background(), false); !errors.Is(err, ErrUnloaded) {
		t.Errorf("second unload: %v", err)
	}
	if err := h.Unload(context.Background(), "hostile", false); !errors.Is(err, ErrNotLoaded) {
		t.Errorf("unload by name: %v", err)
	}
}

func TestForceUnloadDuringCall(t *testing.T) {
	h := newHost(t, WithLimits(Limits{CallTimeout: time.Minute}))
	m, err := h.Load(context.Background(), hostileWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	calls := m.counters().Calls
	go func() {
		_, err := m.Call(context.Background(), "loop", nil)
		done <- err
	}()
	for m.counters().Calls == calls { // wait until the call is under way
		runtime.Gosched()
	}
	if err := m.Unload(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnloaded) {
			t.Errorf("interrupted call: %v, want ErrUnloaded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("forced unload did not stop the running call")
	}
	if st := m.Status(); st.Taint.String() != "ROE" || st.State != StateUnloaded {
		t.Errorf("taint %q state %v, want ROE unloaded (R, not D or L)", st.Taint, st.State)
	}
}

func TestUnloadDead(t *testing.T) {
	h := newHost(t, WithUnloadDead())
	m, err := h.Load(context.Background(), trapInFire())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(context.Background(), "trap_in_fire", nil); !errors.Is(err, ErrTrap) {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.Module("raw") != nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if h.Module("raw") != nil || marker.Lookup("raw:event") != nil {
		t.Error("dead module not unloaded")
	}
	if got := m.Status().Taint.String(); got != "DOE" {
		t.Errorf("taint %q, want DOE (no R for unloading a dead module)", got)
	}
}

// The plugin is P, O and E: what each policy does with its markers.
func TestPolicies(t *testing.T) {
	tests := []struct {
		policy  module.Policy
		refused bool
	}{
		{module.Strict, true},
		{module.Kernel, true},
		{module.Proprietary, false},
		{module.Open, false},
		{module.PolicyDefault, false},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			h := newHost(t, WithPolicy(tt.policy))
			rec := record(t, "classifier:*")
			m, err := h.LoadFile(context.Background(), pluginPath(t))
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Call(context.Background(), "on_request", []byte("GET /api/x"))
			if err != nil || string(out) != "api" {
				t.Fatalf("a refused module still works: %q %v", out, err)
			}
			st := m.Status()
			if (st.State == StateRefused) != tt.refused || (rec.count() == 0) != tt.refused {
				t.Errorf("state %v, %d events; refused want %v", st.State, rec.count(), tt.refused)
			}
			for _, mk := range st.Markers {
				if tt.refused {
					want := `module classifier tainted POE: policy "` + tt.policy.String() + `" refuses taint P`
					if !strings.HasPrefix(mk.Refused, want) || !strings.HasPrefix(marker.Lookup(mk.Name).Refused(), want) {
						t.Errorf("%s refused %q, want %q...", mk.Name, mk.Refused, want)
					}
				} else if mk.Refused != "" {
					t.Errorf("%s refused: %s", mk.Name, mk.Refused)
				}
			}
		})
	}
}

func TestPolicyChanges(t *testing.T) {
	h := newHost(t)
	rec := record(t, "classifier:classified")
	m, err := h.LoadFile(context.Background(), pluginPath(t))
	if err != nil {
		t.Fatal(err)
	}
	call := func() {
		t.Helper()
		if _, err := m.Call(context.Background(), "on_request", []byte("GET /")); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		do      func()
		state   State
		taint   string
		events  int
		refused string
	}{
		{"default", func() {}, StateLive, "POE", 1, ""},
		{"host kernel", func() { h.SetPolicy(module.Kernel) }, StateRefused, "POE", 1, `policy "kernel" refuses taint P`},
		{"module open", func() { m.SetPolicy(module.Open) }, StateLive, "POE", 2, ""},
		{"user taint under open", func() { m.TaintUser("operator distrusts it") }, StateLive, "PUOE", 3, ""},
		{"module follows host again", func() { m.SetPolicy(module.PolicyDefault) }, StateRefused, "PUOE", 3, `policy "kernel" refuses taint PU`},
		{"host proprietary", func() { h.SetPolicy(module.Proprietary) }, StateRefused, "PUOE", 3, `policy "proprietary" refuses taint U`},
	}
	for _, s := range steps {
		s.do()
		call()
		st := m.Status()
		if st.State != s.state || st.Taint.String() != s.taint || rec.count() != s.events || !strings.Contains(st.Refused, s.refused) || (s.refused == "") != (st.Refused == "") {
			t.Errorf("%s: state %v taint %q events %d refused %q; want %v %q %d %q", s.name, st.State, st.Taint, rec.count(), st.Refused, s.state, s.taint, s.events, s.refused)
		}
	}
	if !strings.Contains(module.Tainted().String(), "U") {
		t.Error("process not tainted U")
	}
}

func TestCallErrors(t *testing.T) {
	h := newHost(t)
	m, err := h.Load(context.Background(), quiet(rawInfo("quiet")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(context.Background(), "nope", nil); !errors.Is(err, ErrNoExport) {
		t.Errorf("missing hook: %v", err)
	}
	if _, err := m.Call(context.Background(), "hook", []byte("x")); !errors.Is(err, ErrNoExport) || !strings.Contains(err.Error(), "tracemark_alloc") {
		t.Errorf("input without tracemark_alloc: %v", err)
	}
	if out, err := m.Call(context.Background(), "hook", nil); err != nil || out != nil {
		t.Errorf("empty call: %q %v", out, err)
	}
	if hooks := m.Hooks(); len(hooks) != 1 || hooks[0] != "hook" {
		t.Errorf("hooks %q", hooks)
	}
	if _, err := h.Load(context.Background(), quiet(rawInfo("quiet"))); !errors.Is(err, ErrExists) {
		t.Errorf("second load: %v", err)
	}
	if st := m.Status(); st.Taint.String() != "OE" || st.Counters.Errors != 0 {
		t.Errorf("host-side errors blamed on the module: %+v", st)
	}
}

func TestDefaultHost(t *testing.T) {
	m, err := LoadFile(context.Background(), pluginPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unload(context.Background(), true)
	if DefaultHost().Module("classifier") != m {
		t.Error("LoadFile did not use the default host")
	}
}

// The event path allocates nothing: firing more events in one call costs
// no more allocations than firing none.
func TestFireAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes marker events escape")
	}
	h := newHost(t, WithLimits(Limits{EventRate: 1e12, EventBurst: 1 << 30}))
	p, err := marker.Register("raw:loop", func(e *marker.Event) { _ = e.Field(0).Int() })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	m, err := h.Load(context.Background(), fireLoop())
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer m.pool.put(inst)
	fn := inst.mod.ExportedFunction("fire_loop")
	stack := make([]uint64, 2)
	allocs := func(n uint64) float64 {
		return testing.AllocsPerRun(10, func() {
			stack[0], stack[1] = n, 0
			err := fn.CallWithStack(context.Background(), stack)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if zero, many := allocs(0), allocs(1000); many != zero {
		t.Errorf("1000 events: %v allocations, none: %v", many, zero)
	}
	if p.Fault() != nil {
		t.Fatal(p.Fault())
	}
}

func TestNameFromPath(t *testing.T) {
	for path, want := range map[string]string{
		"/x/My-Plugin.v2.wasm":             "my_plugin",
		"plugin.wasm":                      "plugin",
		"42.wasm":                          "module",
		"___.wasm":                         "module",
		"a b c":                            "a_b_c",
		strings.Repeat("x", 100) + ".wasm": strings.Repeat("x", 64),
	} {
		if got := nameFromPath(path); got != want {
			t.Errorf("nameFromPath(%q) = %q, want %q", path, got, want)
		}
	}
}

// Callers, probes, policy changes and lsmod, all at once: run with -race.
func TestHammer(t *testing.T) {
	h := newHost(t, WithLimits(Limits{CallTimeout: 10 * time.Second}))
	m, err := h.LoadFile(context.Background(), pluginPath(t))
	if err != nil {
		t.Fatal(err)
	}
	const callers, calls = 4, 100
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, callers*calls)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				if out, err := m.Call(context.Background(), "on_request", []byte("GET /api/x")); err != nil || string(out) != "api" {
					errs <- fmt.Errorf("%q %v", out, err)
				}
			}
		}()
	}
	var others sync.WaitGroup
	for _, f := range []func(){
		func() { h.SetPolicy(module.Kernel); h.SetPolicy(module.Open) },
		func() {
			if p, err := marker.Register("classifier:*", func(e *marker.Event) { _ = e.Field(0).Str() }); err == nil {
				p.Unregister()
			}
		},
		func() { _ = h.List().String(); _ = m.Status(); _ = module.Report().String() },
	} {
		others.Add(1)
		go func() {
			defer others.Done()
			for {
				select {
				case <-stop:
					return
				default:
					f()
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	others.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c := m.Status().Counters; c.Calls != callers*calls || c.Fired > callers*calls || c.Delivered > c.Fired || c.Errors != 0 {
		// Events reach the host only while the probe is there (the
		// module's enabled flags).
		t.Errorf("counters %+v", c)
	}
}

// requireSignature is WithRequireSignature if require, else no option.
func requireSignature(require bool) HostOption {
	if require {
		return WithRequireSignature()
	}
	return nil
}

// blockedCall loads fireLoop into h and starts a call whose first event
// goes to a probe that blocks until release is called (the test's
// cleanup calls it too); called gets the call's error when it ends.
func blockedCall(t *testing.T, h *Host) (m *Module, release func(), called chan error) {
	t.Helper()
	entered, unblock := make(chan struct{}), make(chan struct{})
	var entering, releasing sync.Once
	release = func() { releasing.Do(func() { close(unblock) }) }
	p, err := marker.Register("raw:loop", func(*marker.Event) {
		entering.Do(func() { close(entered) })
		<-unblock
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Unregister)
	t.Cleanup(release) // runs before Unregister, which waits for the probe
	m, err = h.Load(context.Background(), fireLoop())
	if err != nil {
		t.Fatal(err)
	}
	called = make(chan error, 1)
	go func() { called <- rawCall(m, "fire_loop", 1, 0) }()
	<-entered
	return m, release, called
}

// TestUnloadStuckCall: a call the host cannot stop (here a probe that
// does not return) fails an unload when its context ends, and a Close,
// instead of hanging them; the module is unloaded once the call ends.
func TestUnloadStuckCall(t *testing.T) {
	h := newHost(t, WithLimits(Limits{EventRate: -1}))
	m, release, called := blockedCall(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Unload(ctx, true); !errors.Is(err, ErrCallStuck) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unload during a stuck call: %v, want ErrCallStuck and DeadlineExceeded", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.Close(ctx); !errors.Is(err, ErrCallStuck) {
		t.Fatalf("close during a stuck call: %v, want ErrCallStuck", err)
	}
	if _, err := m.Call(context.Background(), "fire_loop", nil); !errors.Is(err, ErrUnloaded) {
		t.Errorf("call during the pending unload: %v, want ErrUnloaded", err)
	}
	release()
	if err := <-called; err != nil && !errors.Is(err, ErrUnloaded) {
		t.Errorf("stuck call: %v", err)
	}
	// This unload waits for the pending ones, which end now: whichever
	// holds the instance first unloads the module, the others find it
	// unloaded.
	if err := m.Unload(context.Background(), true); err != nil && !errors.Is(err, ErrUnloaded) {
		t.Errorf("unload after the call ended: %v", err)
	}
	if h.Module("rawloop") != nil || m.Status().State != StateUnloaded {
		t.Errorf("module still listed, state %v", m.Status().State)
	}
}

// TestUnloadIdleDoneContext: an unload whose context is already done
// unloads a module with no call running at once, as a Close does with
// its modules: the context bounds only the wait for running calls.
func TestUnloadIdleDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := newHost(t)
	m, err := h.Load(context.Background(), batcher(batchAt, 4096))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Unload(ctx, false); err != nil {
		t.Fatalf("unload of an idle module with a done context: %v", err)
	}
	if h.Module(m.Name()) != nil || m.Status().State != StateUnloaded {
		t.Fatalf("right after the unload: module listed %v, state %v", h.Module(m.Name()) != nil, m.Status().State)
	}

	h, err = NewHost(WithCache(testCache))
	if err != nil {
		t.Fatal(err)
	}
	var mods []*Module
	for _, w := range [][]byte{batcher(batchAt, 4096), exiter()} {
		m, err := h.Load(context.Background(), w)
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, m)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatalf("close with a done context, no call running: %v", err)
	}
	for _, m := range mods {
		if s := m.Status().State; s != StateUnloaded {
			t.Errorf("module %s %v after the close", m.Name(), s)
		}
	}
}
