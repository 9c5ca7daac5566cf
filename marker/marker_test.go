package marker_test

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/tracemark/tracemark/internal/probeabi"
	"github.com/tracemark/tracemark/internal/rt"
	"github.com/tracemark/tracemark/marker"
)

var freshCount atomic.Int32

// fresh returns a provider name not used before in this process, for
// tests that define markers and must pass under -count=N.
func fresh(prefix string) string { return fmt.Sprintf("%s%d", prefix, freshCount.Add(1)) }

// panicValue runs f and returns what it panicked with.
func panicValue(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

func TestDefineRejectsBadNames(t *testing.T) {
	tests := []struct {
		name, marker, field, want string
	}{
		{"no colon", "nocolon", "x", "want provider:event"},
		{"empty provider", ":event", "x", `provider "" must match`},
		{"empty event", "prov:", "x", `event "" must match`},
		{"upper case", "Http:req", "x", `provider "Http"`},
		{"leading digit", "http:1req", "x", `event "1req"`},
		{"dash", "http:req-done", "x", `event "req-done"`},
		{"two colons", "a:b:c", "x", `event "b:c"`},
		{"bad field", "names:bad_field", "Status", `field 0: invalid name: "Status"`},
		{"empty field", "names:empty_field", "", `field 0: invalid name: ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := panicValue(func() { marker.Define1(tt.marker, marker.Int(tt.field)) })
			err, ok := v.(error)
			if !ok {
				t.Fatalf("Define1(%q) panicked with %v, want an error", tt.marker, v)
			}
			if !errors.Is(err, marker.ErrInvalidName) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want ErrInvalidName mentioning %q", err, tt.want)
			}
		})
	}
}

func TestDefineRejectsDuplicateAndZeroFields(t *testing.T) {
	v := panicValue(func() { marker.Define2("names:dup", marker.Int("a"), marker.String("a")) })
	if err, _ := v.(error); err == nil || !strings.Contains(err.Error(), `field "a" declared twice`) {
		t.Errorf("duplicate field: got %v", v)
	}
	v = panicValue(func() { marker.Define1("names:zero", marker.Field[int]{}) })
	if err, _ := v.(error); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("zero Field: got %v", v)
	}
}

func TestSameSchemaSharesOneMarker(t *testing.T) {
	name := fresh("sites") + ":shared" // fresh under -count
	a := marker.Define2(name, marker.String("k"), marker.Int64("v"))
	b := marker.Define2(name, marker.String("k"), marker.Int64("v"))
	if a.Info() != b.Info() {
		t.Fatal("two definitions with the same schema are two markers")
	}
	if n := a.Info().CallSites(); n != 2 {
		t.Errorf("CallSites = %d, want 2", n)
	}
	var got []int64
	p, err := marker.Register(name, func(e *marker.Event) { got = append(got, e.Field(1).Int()) })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	a.Fire("a", 1)
	b.Fire("b", 2)
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("probe saw %v, want [1 2] from both call sites", got)
	}
}

func TestDifferentSchemaIsAConflictNamingBothLocations(t *testing.T) {
	_, _, line, _ := runtime.Caller(0)
	marker.Define1("sites:conflict", marker.Int("v"))
	v := panicValue(func() { marker.Define1("sites:conflict", marker.String("v")) })
	var ce *marker.ConflictError
	err, _ := v.(error)
	if !errors.As(err, &ce) || !errors.Is(err, marker.ErrSchemaConflict) {
		t.Fatalf("panic value %v: want *ConflictError", v)
	}
	if !strings.HasSuffix(ce.First, fmt.Sprintf("marker_test.go:%d", line+1)) ||
		!strings.HasSuffix(ce.Second, fmt.Sprintf("marker_test.go:%d", line+2)) {
		t.Errorf("locations %q and %q: want this file's lines %d and %d", ce.First, ce.Second, line+1, line+2)
	}
	if !strings.Contains(err.Error(), "v=%d") || !strings.Contains(err.Error(), "v=%s") {
		t.Errorf("error %q does not show both schemas", err)
	}
}

var _, _, describedLine, _ = runtime.Caller(0)
var describedMarker = marker.Define3("info:described",
	marker.String("method"), marker.Uint16("status"), marker.Duration("latency"),
	marker.Stable, marker.Doc("an HTTP request was answered"))

func TestInfoDescribesTheMarker(t *testing.T) {
	m := describedMarker.Info()
	checks := []struct{ what, got, want string }{
		{"Name", m.Name(), "info:described"},
		{"Provider", m.Provider(), "info"},
		{"Event", m.Event(), "described"},
		{"Format", m.Format(), "method=%s status=%u latency=%v"},
		{"Doc", m.Doc(), "an HTTP request was answered"},
		{"Stability", m.Stability().String(), "stable"},
		{"Module", m.Module().Path, "github.com/tracemark/tracemark"},
		{"Field(1)", m.Field(1).String(), "status uint16"},
		{"String", m.String(), "info:described(method=%s status=%u latency=%v)"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if loc := m.Location(); !strings.HasSuffix(loc, fmt.Sprintf("marker/marker_test.go:%d", describedLine+1)) {
		t.Errorf("Location = %q, want this file, line %d", loc, describedLine+1)
	}
	if m.ID() == 0 || m.NumFields() != 3 || m.FieldIndex("latency") != 2 || m.FieldIndex("nope") != -1 {
		t.Errorf("ID %d, NumFields %d, FieldIndex wrong", m.ID(), m.NumFields())
	}
	if m.Enabled() || m.ProbeCount() != 0 {
		t.Error("a marker without probes reports itself enabled")
	}
	if marker.Unstable.String() != "unstable" || marker.Internal.String() != "internal" {
		t.Error("stability names")
	}
}

var allKinds = marker.Define6("kinds:a",
	marker.Int8("i8"), marker.Int16("i16"), marker.Int32("i32"), marker.Int64("i64"),
	marker.Int("i"), marker.Duration("d"))
var allKindsU = marker.Define6("kinds:b",
	marker.Uint8("u8"), marker.Uint16("u16"), marker.Uint32("u32"), marker.Uint64("u64"),
	marker.Uint("u"), marker.Bool("b"))
var allKindsV = marker.Define4("kinds:c",
	marker.Float32("f32"), marker.Float64("f64"), marker.String("s"), marker.Bytes("bs"))

// snapshotValues copies an event's values into plain Go values.
func snapshotValues(e *marker.Event) []any {
	var out []any
	for i := range e.NumFields() {
		v := e.Field(i)
		switch k := v.Kind(); {
		case k == marker.KindDuration:
			out = append(out, v.Duration())
		case k.Signed():
			out = append(out, v.Int())
		case k.Unsigned():
			out = append(out, v.Uint())
		case k.Float():
			out = append(out, v.Float())
		case k == marker.KindBool:
			out = append(out, v.Bool())
		case k == marker.KindString:
			out = append(out, strings.Clone(v.Str()))
		case k == marker.KindBytes:
			out = append(out, string(v.Bytes()))
		}
	}
	return out
}

func TestFireDeliversEveryKind(t *testing.T) {
	var got [][]any
	p, err := marker.Register("kinds:*", func(e *marker.Event) { got = append(got, snapshotValues(e)) })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	allKinds.Fire(math.MinInt8, math.MaxInt16, math.MinInt32, math.MaxInt64, -7, -3*time.Second)
	allKindsU.Fire(math.MaxUint8, math.MaxUint16, math.MaxUint32, math.MaxUint64, 42, true)
	allKindsV.Fire(float32(1.5), math.Inf(-1), "héllo", []byte{0, 1, 255})
	allKindsV.Fire(0, 0, "", nil)
	want := [][]any{
		{int64(math.MinInt8), int64(math.MaxInt16), int64(math.MinInt32), int64(math.MaxInt64), int64(-7), -3 * time.Second},
		{uint64(math.MaxUint8), uint64(math.MaxUint16), uint64(math.MaxUint32), uint64(math.MaxUint64), uint64(42), true},
		{1.5, math.Inf(-1), "héllo", "\x00\x01\xff"},
		{0.0, 0.0, "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Errorf("event %d field %d = %#v, want %#v", i, j, got[i][j], want[i][j])
			}
		}
	}
}

func TestEventTimeIsLazyAndSharedByProbes(t *testing.T) {
	m := marker.Define0("time:shared")
	var times []int64
	before := marker.Now()
	p1, _ := marker.Register("time:shared", func(e *marker.Event) { times = append(times, e.Time()) })
	p2, _ := marker.Register("time:shared", func(e *marker.Event) { times = append(times, e.Time()) })
	defer p1.Unregister()
	defer p2.Unregister()
	m.Fire()
	after := marker.Now()
	if len(times) != 2 || times[0] != times[1] || times[0] < before || times[0] > after {
		t.Errorf("times %v not equal and within [%d, %d]", times, before, after)
	}
	if e := m.Info().ProbeCount(); e != 2 {
		t.Errorf("ProbeCount = %d, want 2", e)
	}
}

func TestFirstProbeEnablesLastDisables(t *testing.T) {
	m := marker.Define1("state:toggle", marker.Int("x"))
	if m.Enabled() {
		t.Fatal("enabled before any probe")
	}
	p1, _ := marker.Register("state:toggle", func(*marker.Event) {})
	p2, _ := marker.Register("state:*", func(*marker.Event) {})
	if !m.Enabled() || !m.Info().Enabled() {
		t.Fatal("not enabled with probes")
	}
	p1.Unregister()
	if !m.Enabled() {
		t.Fatal("disabled while a probe remains")
	}
	p2.Unregister()
	p2.Unregister() // twice is harmless
	if m.Enabled() || m.Info().ProbeCount() != 0 {
		t.Fatal("enabled after the last probe left")
	}
}

func TestGlobProbeConnectsToMarkersDefinedLater(t *testing.T) {
	var names []string
	p, err := marker.Register("late:*", func(e *marker.Event) { names = append(names, e.Marker().Name()) })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	m := marker.Define0("late:arrival") // as if a package initialised after the probe
	other := marker.Define0("early:other")
	m.Fire()
	other.Fire()
	if len(names) != 1 || names[0] != "late:arrival" {
		t.Errorf("probe saw %v, want [late:arrival]", names)
	}
	if ms := p.Markers(); len(ms) != 1 || ms[0] != m.Info() {
		t.Errorf("Markers() = %v", ms)
	}
	if p.Pattern() != "late:*" || !p.Active() {
		t.Error("Pattern/Active")
	}
}

func TestProbeSchemaExpectations(t *testing.T) {
	marker.Define2("expect:match", marker.String("method"), marker.Int("status"))
	marker.Define1("expect:other", marker.String("method"))
	fields := []marker.FieldInfo{marker.String("method").Info(), marker.Int("status").Info()}

	p, err := marker.Register("expect:match", func(*marker.Event) {}, marker.ExpectFields(fields...))
	if err != nil {
		t.Fatalf("matching schema refused: %v", err)
	}
	p.Unregister()

	_, err = marker.Register("expect:*", func(*marker.Event) {}, marker.ExpectFields(fields...))
	if !errors.Is(err, marker.ErrSchemaConflict) || !strings.Contains(err.Error(), "expect:other") {
		t.Errorf("mismatch: got %v, want a schema conflict naming expect:other", err)
	}
	if marker.Lookup("expect:match").Enabled() {
		t.Error("a refused registration connected a marker anyway")
	}

	_, err = marker.Register("expect:match", func(*marker.Event) {}, marker.ExpectFormat("method=%s status=%u"))
	if !errors.Is(err, marker.ErrSchemaConflict) {
		t.Errorf("format mismatch accepted: %v", err)
	}

	provider := fresh("expect")
	p, err = marker.Register(provider+":*", func(*marker.Event) {}, marker.ExpectFormat("method=%s"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	marker.Define1(provider+":later_bad", marker.Int("method"))
	good := marker.Define1(provider+":later_good", marker.String("method"))
	if refused := p.Refused(); len(refused) != 1 || !strings.Contains(refused[0].Error(), provider+":later_bad") {
		t.Errorf("Refused() = %v, want the later mismatching marker", refused)
	}
	if !good.Enabled() {
		t.Error("later matching marker not connected")
	}
}

func TestOnConnectCanRefuse(t *testing.T) {
	marker.Define1("onconnect:a", marker.Int("x"))
	boom := errors.New("no field y")
	_, err := marker.Register("onconnect:*", func(*marker.Event) {}, marker.OnConnect(func(m *marker.Info) error {
		if m.FieldIndex("y") < 0 {
			return boom
		}
		return nil
	}))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "onconnect:a") {
		t.Errorf("got %v", err)
	}
}

func TestRegisterRejectsBadInput(t *testing.T) {
	if _, err := marker.Register("[", func(*marker.Event) {}); !errors.Is(err, marker.ErrBadPattern) {
		t.Errorf("bad pattern: %v", err)
	}
	if _, err := marker.Register("", func(*marker.Event) {}); !errors.Is(err, marker.ErrBadPattern) {
		t.Errorf("empty pattern: %v", err)
	}
	if _, err := marker.Register("x:y", nil); err == nil {
		t.Error("nil probe accepted")
	}
}

func TestRegistryListsAndMatches(t *testing.T) {
	marker.Define0("reg:request_start")
	marker.Define0("reg:request_done")
	marker.Define0("regx:request_done")
	ms, err := marker.Match("reg:*")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name() != "reg:request_done" || ms[1].Name() != "reg:request_start" {
		t.Errorf("Match(reg:*) = %v", ms)
	}
	ms, _ = marker.Match("reg*:request_d*")
	if len(ms) != 2 {
		t.Errorf("Match(reg*:request_d*) = %v", ms)
	}
	if _, err := marker.Match("[x"); err == nil {
		t.Error("bad glob accepted")
	}
	if marker.Lookup("reg:request_done") == nil || marker.Lookup("reg:nope") != nil {
		t.Error("Lookup")
	}
	var prev string
	n := 0
	for m := range marker.All() {
		if m.Name() < prev {
			t.Errorf("All() not sorted: %s after %s", m.Name(), prev)
		}
		prev = m.Name()
		n++
	}
	if n < 3 {
		t.Errorf("All() yielded %d markers", n)
	}
	for range marker.All() {
		break // stopping early must be fine
	}
}

func TestPanickingProbeIsCutOffOthersRun(t *testing.T) {
	m := marker.Define1("fault:boom", marker.Int("x"))
	before := marker.FaultCount()
	var first, last, bad atomic.Int64
	p1, _ := marker.Register("fault:boom", func(*marker.Event) { first.Add(1) })
	p2, _ := marker.Register("fault:boom", func(e *marker.Event) {
		bad.Add(1)
		panic("probe bug")
	})
	p3, _ := marker.Register("fault:boom", func(*marker.Event) { last.Add(1) })
	defer p1.Unregister()
	defer p3.Unregister()
	m.Fire(1)
	m.Fire(2)
	if first.Load() != 2 || last.Load() != 2 {
		t.Errorf("other probes ran %d and %d times, want 2 each", first.Load(), last.Load())
	}
	if bad.Load() != 1 {
		t.Errorf("panicking probe ran %d times, want 1 (cut off)", bad.Load())
	}
	f := p2.Fault()
	if f == nil || f.Value != "probe bug" || f.Marker != "fault:boom" || !strings.Contains(string(f.Stack), "marker_test.go") {
		t.Fatalf("Fault = %+v", f)
	}
	if p2.Active() || m.Info().ProbeCount() != 2 {
		t.Errorf("cut-off probe still connected (ProbeCount %d)", m.Info().ProbeCount())
	}
	if marker.FaultCount() != before+1 {
		t.Errorf("FaultCount grew by %d", marker.FaultCount()-before)
	}
	recent := marker.RecentFaults()
	if len(recent) == 0 || recent[len(recent)-1].Value != "probe bug" {
		t.Errorf("RecentFaults = %v", recent)
	}
	p2.Unregister() // after a fault, still harmless
}

func TestLoneProbePanicIsCutOff(t *testing.T) {
	m := marker.Define0("fault:alone")
	calls := 0
	p, _ := marker.Register("fault:alone", func(*marker.Event) {
		calls++
		panic(errors.New("alone"))
	})
	m.Fire()
	m.Fire()
	if calls != 1 || m.Enabled() || p.Fault() == nil {
		t.Errorf("calls %d, enabled %v, fault %v: want 1, false, a fault", calls, m.Enabled(), p.Fault())
	}
	p.Unregister() // must not wait for a reader the panic leaked
}

func TestGoexitInProbeLeavesTheReaderSection(t *testing.T) {
	m := marker.Define0("fault:goexit")
	p, _ := marker.Register("fault:goexit", func(*marker.Event) { runtime.Goexit() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Fire()
	}()
	<-done
	p.Unregister() // would wait forever if the Goexit leaked a reader
	if m.Enabled() {
		t.Error("still enabled")
	}
}

// TestUnregisterIsAGracePeriod hammers one marker from many goroutines
// while probes come and go, and checks that no probe ever runs after its
// Unregister returned. scripts/test also runs it with -tags
// tracemark_gracetest, which makes readers yield between loading the epoch
// and counting themselves in (see TestGraceLateReaderInStaleIndex).
func TestUnregisterIsAGracePeriod(t *testing.T) {
	m := marker.Define1("grace:hammer", marker.Int("x"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m.Fire(g*1_000_000 + i)
			}
		}()
	}
	var violations, calls atomic.Int64
	rounds := 100
	if testing.Short() {
		rounds = 20
	}
	for range rounds {
		var gone, used atomic.Bool
		p, err := marker.Register("grace:hammer", func(*marker.Event) {
			calls.Add(1)
			used.Store(true)
			if gone.Load() {
				violations.Add(1)
			}
			runtime.Gosched() // stay inside while Unregister runs
			if gone.Load() {
				violations.Add(1)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		// Make sure the probe is in use before removing it. With the
		// grace window widened (-tags tracemark_gracetest), wait until
		// this round's probe ran: late readers then pick it up and call it
		// during its Unregister, which is the case the window is for.
		// Without the tag that wait costs seconds and finds nothing more.
		for calls.Load() == 0 || marker.GraceWindowWidened && !used.Load() {
			m.Fire(-1)
		}
		p.Unregister()
		gone.Store(true)
	}
	close(stop)
	wg.Wait()
	if v := violations.Load(); v != 0 {
		t.Fatalf("%d probe calls after Unregister returned", v)
	}
	if calls.Load() == 0 {
		t.Fatal("probes never ran")
	}
}

func TestFireAllocatesNothing(t *testing.T) {
	if marker.RaceEnabled {
		t.Skip("the race detector makes Events escape (see hide_race.go)")
	}
	if marker.DebugMode {
		t.Skip("tracemark_debug makes Events escape (see debug_on.go)")
	}
	m := marker.Define3("alloc:three", marker.String("s"), marker.Bytes("b"), marker.Int("i"))
	check := func(what string) {
		t.Helper()
		n := testing.AllocsPerRun(1000, func() {
			buf := make([]byte, 16) // stays on the stack unless Fire leaks it
			buf[0] = 1
			m.Fire(string(buf[:4]), buf, 7)
		})
		if n != 0 {
			t.Errorf("%s: %v allocs per Fire, want 0", what, n)
		}
	}
	check("disabled")
	p, _ := marker.Register("alloc:three", func(e *marker.Event) { _ = e.Field(0).Str() })
	defer p.Unregister()
	check("enabled")
}

func TestExclusiveDynamicDefinitionNeverJoins(t *testing.T) {
	name := fresh("excl") + ":event"
	marker.Define1(name, marker.Int("x"))
	_, err := marker.DefineDynamic(name, []marker.FieldInfo{{Name: "x", Kind: marker.KindInt64}}, marker.Exclusive())
	if !errors.Is(err, marker.ErrNameTaken) {
		t.Fatalf("exclusive definition of an existing name: %v", err)
	}
	d, err := marker.DefineDynamic(fresh("excl")+":mine", nil, marker.Exclusive(), marker.DefinedAt("plugin.wasm", 0))
	if err != nil {
		t.Fatal(err)
	}
	if loc := d.Info().Location(); loc != "plugin.wasm" {
		t.Errorf("Location = %q", loc)
	}
	d.Remove()
	if marker.Lookup(d.Info().Name()) != nil {
		t.Error("removed marker still listed")
	}
}

// TestEventLayout checks the contract of internal/probeabi: the field
// pointers start an Event, so recorders can read them in place.
func TestEventLayout(t *testing.T) {
	m := marker.Define3("layouttest:ev", marker.Int64("a"), marker.String("b"), marker.Uint8("c"))
	var got [3]any
	p, err := marker.Register("layouttest:ev", func(e *marker.Event) {
		f := &probeabi.Of(e).Fields
		got = [3]any{*(*int64)(f[0]), *(*string)(f[1]), *(*uint8)(f[2])}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	m.Fire(-7, "x", 9)
	if want := [3]any{int64(-7), "x", uint8(9)}; got != want {
		t.Fatalf("fields read through eventlayout = %v, want %v", got, want)
	}
}

// pinnedOption is how this module's recorders ask for a pinned probe.
var pinnedOption = probeabi.Pinned[marker.ProbeOption, *marker.Info](nil)

// TestPinnedProbe checks that a pinned probe runs pinned to the P that
// Event.P names, alone on a marker and beside other probes.
func TestPinnedProbe(t *testing.T) {
	m := marker.Define1("pinnedtest:ev", marker.Int64("n"))
	var runs, wrongP atomic.Int64
	check := func(e *marker.Event) {
		runs.Add(1)
		// A nested pin returns the P the goroutine is already pinned to.
		if p := rt.Pin(); p != probeabi.Of(e).P {
			wrongP.Add(1)
		}
		rt.Unpin()
	}
	p, err := marker.Register("pinnedtest:ev", check, pinnedOption)
	if err != nil {
		t.Fatal(err)
	}
	fire := func(n int) {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					m.Fire(int64(g*n + i))
				}
			}()
		}
		wg.Wait()
	}
	fire(1000)
	other, err := marker.Register("pinnedtest:ev", func(*marker.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	fire(1000) // two probes: the general path, still pinned for this one
	other.Unregister()
	p.Unregister()
	if runs.Load() != 16000 || wrongP.Load() != 0 {
		t.Fatalf("pinned probe ran %d times (want 16000), %d of them not pinned to Event.P", runs.Load(), wrongP.Load())
	}
}

// TestPinnedProbeMoves checks the grace period of a pinned probe that
// unpins, yields and pins again (as a recorder does around a CEL filter):
// Unregister must neither hang on the counts left behind nor return while
// the probe still runs.
func TestPinnedProbeMoves(t *testing.T) {
	m := marker.Define1("pinnedtest:moves", marker.Int64("n"))
	var inside, after atomic.Int64
	var unregistered atomic.Bool
	p, err := marker.Register("pinnedtest:moves", func(e *marker.Event) {
		inside.Add(1)
		if unregistered.Load() {
			after.Add(1)
		}
		rt.Unpin()
		runtime.Gosched()
		probeabi.Of(e).P = rt.Pin()
		inside.Add(-1)
	}, pinnedOption)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					m.Fire(1)
				}
			}
		}()
	}
	for inside.Load() == 0 {
		runtime.Gosched()
	}
	p.Unregister()
	unregistered.Store(true)
	n := inside.Load()
	close(stop)
	wg.Wait()
	if n != 0 || after.Load() != 0 {
		t.Fatalf("after Unregister: %d probe calls still inside, %d started", n, after.Load())
	}
}

// TestPinnedProbeData checks that a pinned probe's events carry the data
// its data function returned for their marker, alone on a marker and
// beside another probe, for markers defined before and after it.
func TestPinnedProbeData(t *testing.T) {
	a := marker.Define1("pinneddata:a", marker.Int64("n"))
	names := map[unsafe.Pointer]string{}
	data := func(m *marker.Info) unsafe.Pointer {
		name := m.Name()
		p := unsafe.Pointer(&[]byte(name)[0])
		names[p] = name
		return p
	}
	var got []string
	p, err := marker.Register("pinneddata:*", func(e *marker.Event) {
		got = append(got, e.Marker().Name()+"="+names[probeabi.Of(e).Data])
	}, probeabi.Pinned[marker.ProbeOption](data))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	b := marker.Define1("pinneddata:b", marker.Int64("n")) // defined later
	a.Fire(1)
	b.Fire(2)
	other, err := marker.Register("pinneddata:b", func(*marker.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	b.Fire(3) // two probes: the general path
	other.Unregister()
	a.Fire(4)
	want := []string{"pinneddata:a=pinneddata:a", "pinneddata:b=pinneddata:b", "pinneddata:b=pinneddata:b", "pinneddata:a=pinneddata:a"}
	if !slices.Equal(got, want) {
		t.Fatalf("events saw %q, want %q", got, want)
	}
}

// TestPinnedChecksTypes checks that the pinned option's constructor,
// reached through internal/probeabi, refuses types other than marker's.
func TestPinnedChecksTypes(t *testing.T) {
	defer func() {
		err, _ := recover().(error)
		if !errors.Is(err, probeabi.ErrTypes) || !strings.Contains(err.Error(), "*marker.FieldInfo") {
			t.Fatalf("Pinned with the wrong marker type panicked with %v, want probeabi.ErrTypes naming it", err)
		}
	}()
	probeabi.Pinned[marker.ProbeOption, *marker.FieldInfo](nil)
}

func TestOnConnectCanLeaveOut(t *testing.T) {
	a := marker.Define1("leftout:a", marker.Int("x"))
	b := marker.Define1("leftout:b", marker.Int("y"))
	p, err := marker.Register("leftout:*", func(*marker.Event) {}, marker.OnConnect(func(m *marker.Info) error {
		if m.FieldIndex("y") < 0 {
			return fmt.Errorf("no field y: %w", marker.ErrLeftOut)
		}
		return nil
	}))
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	defer p.Unregister()
	if a.Enabled() || !b.Enabled() {
		t.Errorf("enabled: a %v (want false), b %v (want true)", a.Enabled(), b.Enabled())
	}
	if r := p.Refused(); len(r) != 1 || !errors.Is(r[0], marker.ErrLeftOut) || !strings.Contains(r[0].Error(), "leftout:a") {
		t.Errorf("Refused() = %v, want leftout:a left out", r)
	}
}

// A probe that panics with a value holding an event's string (valid only
// during the call: a module's may live in memory unmapped after) leaves a
// Fault that keeps a copy: the text it had when the probe panicked.
func TestFaultValueDetachedFromEvent(t *testing.T) {
	m := marker.Define1(fresh("fault")+":alias", marker.String("s"))
	p, err := marker.Register(m.Info().Name(), func(e *marker.Event) { panic(errors.New(e.Field(0).Str())) })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	buf := []byte("before")
	m.Fire(unsafe.String(&buf[0], len(buf)))
	copy(buf, "AFTER!") // what the event's memory holds once the call is over
	f := p.Fault()
	if f == nil {
		t.Fatal("no fault")
	}
	if got, want := f.Error(), "probe panicked on "+m.Info().Name()+": before"; got != want {
		t.Errorf("fault %q, want %q", got, want)
	}
	if recent := marker.RecentFaults(); len(recent) == 0 || recent[len(recent)-1].Value != "before" {
		t.Errorf("RecentFaults' last Value %v, want the text \"before\"", recent[len(recent)-1].Value)
	}
}
