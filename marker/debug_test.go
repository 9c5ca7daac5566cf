//go:build tracemark_debug

package marker_test

import (
	"strings"
	"testing"

	"github.com/tracemark/tracemark/marker"
)

// These tests run only with the tracemark_debug build tag (scripts/test
// runs the package once with it).

func TestDebugKeptEventPanicsWhenUsed(t *testing.T) {
	m := marker.Define2(fresh("debug")+":request_done", marker.String("method"), marker.Int("status"))
	name := m.Info().Name()
	var kept *marker.Event
	var keptValue marker.Value
	var inside []string // what the probe saw while it ran: no false alarms
	var clone *marker.Event
	p, err := marker.Register(name, func(e *marker.Event) {
		kept, keptValue = e, e.Field(1)
		inside = append(inside, e.Field(0).Str(), e.Marker().Name())
		clone = e.Clone()
	})
	if err != nil {
		t.Fatal(err)
	}
	// A second probe on the same firing still sees the Event live.
	var second int64
	p2, err := marker.Register(name, func(e *marker.Event) { second = keptValue.Int() + e.Field(1).Int() })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	defer p2.Unregister()
	m.Fire("GET", 200)
	if p.Fault() != nil || p2.Fault() != nil {
		t.Fatalf("probes faulted while the Event was live: %v, %v", p.Fault(), p2.Fault())
	}
	if strings.Join(inside, " ") != "GET "+name || second != 400 {
		t.Fatalf("inside the probes: %q, %d", inside, second)
	}
	eventMsg := "marker: Event of " + name + " used after its probe returned; call Event.Clone to keep it"
	valueMsg := `marker: Value of field "status" of ` + name + " used after its probe returned; call Event.Clone to keep it"
	tests := []struct {
		name string
		use  func()
		want string
	}{
		{"Field", func() { kept.Field(0) }, eventMsg},
		{"FieldByName", func() { kept.FieldByName("status") }, eventMsg},
		{"Marker", func() { kept.Marker() }, eventMsg},
		{"Time", func() { kept.Time() }, eventMsg},
		{"NumFields", func() { kept.NumFields() }, eventMsg},
		{"Clone", func() { kept.Clone() }, eventMsg},
		{"Value.Int", func() { keptValue.Int() }, valueMsg},
		{"Value.Kind", func() { keptValue.Kind() }, valueMsg},
		{"Value.Bits", func() { keptValue.Bits() }, valueMsg},
		{"Value.Str (wrong kind too)", func() { keptValue.Str() }, valueMsg},
	}
	for _, tt := range tests {
		if got := panicMessage(tt.use); got != tt.want {
			t.Errorf("%s on a kept Event: panic %q, want %q", tt.name, got, tt.want)
		}
	}
	// The clone made inside the probe is still good.
	if clone.Field(0).Str() != "GET" || clone.Field(1).Int() != 200 {
		t.Errorf("clone: %q %d", clone.Field(0).Str(), clone.Field(1).Int())
	}
	// Forwarding a kept Value to a dynamic marker is a use too.
	d, err := marker.DefineDynamic(fresh("debug")+":forward", []marker.FieldInfo{{Name: "status", Kind: marker.KindInt64}})
	if err != nil {
		t.Fatal(err)
	}
	if got := panicMessage(func() { _ = d.Fire(keptValue) }); got != valueMsg {
		t.Errorf("Dynamic.Fire of a kept Value: panic %q, want %q", got, valueMsg)
	}
}

// TestDebugKeptEventOnAnotherGoroutine is the common mistake: a probe
// sends the Event itself to a worker. The worker's first use panics.
func TestDebugKeptEventOnAnotherGoroutine(t *testing.T) {
	m := marker.Define1(fresh("debug")+":sent", marker.String("job"))
	events := make(chan *marker.Event, 1)
	p, err := marker.Register(m.Info().Name(), func(e *marker.Event) { events <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	m.Fire("backup")
	got := make(chan string)
	go func() { e := <-events; got <- panicMessage(func() { e.Field(0).Str() }) }()
	want := "marker: Event of " + m.Info().Name() + " used after its probe returned; call Event.Clone to keep it"
	if msg := <-got; msg != want {
		t.Errorf("worker using the sent Event: panic %q, want %q", msg, want)
	}
}

// TestDebugEventOfAPanickingProbeIsDone checks that a probe cut off by a
// panic still leaves its Event marked.
func TestDebugEventOfAPanickingProbeIsDone(t *testing.T) {
	m := marker.Define1(fresh("debug")+":panics", marker.Int("n"))
	var kept *marker.Event
	p, err := marker.Register(m.Info().Name(), func(e *marker.Event) { kept = e; panic("probe bug") })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	m.Fire(1)
	if p.Fault() == nil {
		t.Fatal("probe did not fault")
	}
	if msg := panicMessage(func() { kept.NumFields() }); !strings.Contains(msg, "used after its probe returned") {
		t.Errorf("kept Event of a panicking probe: panic %q", msg)
	}
}
