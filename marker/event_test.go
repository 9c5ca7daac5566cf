package marker_test

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/tracemark/tracemark/marker"
)

// allFields is a schema with one field of each accessor's kinds (and two
// of the signed ones, which Int and Duration share).
var allFields = []marker.FieldInfo{
	{Name: "i8", Kind: marker.KindInt8}, {Name: "u16", Kind: marker.KindUint16},
	{Name: "f32", Kind: marker.KindFloat32}, {Name: "ok", Kind: marker.KindBool},
	{Name: "method", Kind: marker.KindString}, {Name: "body", Kind: marker.KindBytes},
	{Name: "latency", Kind: marker.KindDuration}, {Name: "n", Kind: marker.KindInt64},
}

// allValues are values for allFields.
func allValues(method string, body []byte) []marker.Value {
	return []marker.Value{
		marker.IntValue(marker.KindInt8, -5), marker.UintValue(marker.KindUint16, 65000),
		marker.Float32Value(2.5), marker.BoolValue(true),
		marker.StringValue(method), marker.BytesValue(body),
		marker.IntValue(marker.KindDuration, int64(1500*time.Microsecond)), marker.IntValue(marker.KindInt64, math.MinInt64),
	}
}

// panicMessage runs f and returns the message of its panic, "" if none.
func panicMessage(f func()) string {
	v := panicValue(f)
	if v == nil {
		return ""
	}
	if err, ok := v.(error); ok {
		return err.Error()
	}
	return fmt.Sprint(v)
}

// accessors calls each accessor of v by name.
var accessors = []struct {
	name   string
	call   func(marker.Value)
	accept func(marker.Kind) bool
}{
	{"Int", func(v marker.Value) { v.Int() }, marker.Kind.Signed},
	{"Uint", func(v marker.Value) { v.Uint() }, marker.Kind.Unsigned},
	{"Float", func(v marker.Value) { v.Float() }, marker.Kind.Float},
	{"Bool", func(v marker.Value) { v.Bool() }, func(k marker.Kind) bool { return k == marker.KindBool }},
	{"Duration", func(v marker.Value) { v.Duration() }, func(k marker.Kind) bool { return k == marker.KindDuration }},
	{"Str", func(v marker.Value) { v.Str() }, func(k marker.Kind) bool { return k == marker.KindString }},
	{"Bytes", func(v marker.Value) { v.Bytes() }, func(k marker.Kind) bool { return k == marker.KindBytes }},
}

func TestValueAccessorsOfTheWrongKindPanic(t *testing.T) {
	d, err := marker.DefineDynamic(fresh("kinds")+":wrong", allFields)
	if err != nil {
		t.Fatal(err)
	}
	name := d.Info().Name()
	type result struct{ field, accessor, msg string }
	var got []result
	p, err := marker.Register(name, func(e *marker.Event) {
		for i := range e.NumFields() {
			for _, a := range accessors {
				msg := panicMessage(func() { a.call(e.Field(i)) })
				got = append(got, result{allFields[i].Name, a.name, msg})
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	if err := d.Fire(allValues("GET", []byte("x"))...); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(allFields)*len(accessors) {
		t.Fatalf("probe made %d accessor calls, want %d (did it panic?)", len(got), len(allFields)*len(accessors))
	}
	descr := map[string]string{
		"Int": "a signed integer or duration", "Uint": "an unsigned integer", "Float": "float32 or float64",
		"Bool": "bool", "Duration": "duration", "Str": "string", "Bytes": "bytes",
	}
	for j, r := range got {
		f, a := allFields[j/len(accessors)], accessors[j%len(accessors)]
		want := ""
		if !a.accept(f.Kind) {
			want = fmt.Sprintf("marker: Value kind is %s, not %s (Value.%s on field %q of %s)", f.Kind, descr[a.name], a.name, f.Name, name)
		}
		if r.msg != want {
			t.Errorf("%s of field %s (%s): panic %q, want %q", r.accessor, r.field, f.Kind, r.msg, want)
		}
	}
}

func TestValueAccessorPanicMessages(t *testing.T) {
	m := marker.Define2(fresh("kinds")+":msg", marker.String("method"), marker.Int("status"))
	var msgs []string
	p, err := marker.Register(m.Info().Name(), func(e *marker.Event) {
		missing, _ := e.FieldByName("missing")
		msgs = append(msgs,
			panicMessage(func() { e.Field(1).Str() }),
			panicMessage(func() { e.Field(0).Int() }),
			panicMessage(func() { missing.Bool() }),
			panicMessage(func() { e.Field(2) }))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	m.Fire("GET", 200)
	want := []string{
		`marker: Value kind is ` + m.Info().Fields()[1].Kind.String() + `, not string (Value.Str on field "status" of ` + m.Info().Name() + `)`,
		`marker: Value kind is string, not a signed integer or duration (Value.Int on field "method" of ` + m.Info().Name() + `)`,
		`marker: Value kind is invalid, not bool (Value.Bool on the zero Value, which FieldByName returns for a missing field)`,
		`marker: field index out of range`,
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	if msg := panicMessage(func() { marker.StringValue("x").Uint() }); msg != "marker: Value kind is string, not an unsigned integer (Value.Uint)" {
		t.Errorf("constructed value: %q", msg)
	}
}

func TestWrongKindInAProbeIsAFault(t *testing.T) {
	m := marker.Define1(fresh("kinds")+":fault", marker.String("method"))
	p, err := marker.Register(m.Info().Name(), func(e *marker.Event) { e.Field(0).Int() })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	m.Fire("GET")
	f := p.Fault()
	if f == nil || p.Active() {
		t.Fatalf("probe using the wrong accessor: fault %v, active %v; want a fault", f, p.Active())
	}
	if want := `Value kind is string, not a signed integer or duration (Value.Int on field "method"`; !strings.Contains(f.Error(), want) {
		t.Errorf("fault %q does not say %q", f.Error(), want)
	}
}

// smashStack writes over the stack below its caller's frame, where the
// Events of Fire calls that returned lived.
//
//go:noinline
func smashStack(depth int) byte {
	var junk [2048]byte
	for i := range junk {
		junk[i] = byte(0xa5 ^ depth ^ i)
	}
	if depth > 0 {
		return smashStack(depth-1) ^ junk[depth]
	}
	return junk[7]
}

// fireFromStack fires d with a string and a byte slice that live in a
// buffer on this function's stack, which it overwrites after Fire returns.
//
//go:noinline
func fireFromStack(t *testing.T, d *marker.Dynamic, method string, body []byte) {
	var buf [64]byte
	n := copy(buf[:], method)
	copy(buf[n:], body)
	bytes := buf[n : n+len(body)]
	if body == nil {
		bytes = nil
	}
	str := unsafe.String(&buf[0], n) // in buf too
	if err := d.Fire(allValues(str, bytes)...); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = '#'
	}
}

// checkAll checks the values of a clone of an event of allValues.
func checkAll(t *testing.T, e *marker.Event, method, body string) {
	t.Helper()
	got := fmt.Sprint(e.Marker().Name() != "", e.NumFields(), snapshotValues(e))
	want := fmt.Sprint(true, 8, []any{int64(-5), uint64(65000), 2.5, true, method, body, 1500 * time.Microsecond, int64(math.MinInt64)})
	if got != want {
		t.Errorf("clone after Fire returned: %s, want %s", got, want)
	}
}

func TestCloneOutlivesFire(t *testing.T) {
	d, err := marker.DefineDynamic(fresh("clone")+":all", allFields)
	if err != nil {
		t.Fatal(err)
	}
	var clones []*marker.Event
	var times []int64
	p, err := marker.Register(d.Info().Name(), func(e *marker.Event) {
		c := e.Clone()
		times = append(times, e.Time())
		clones = append(clones, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	fireFromStack(t, d, "GET", []byte("hello"))
	fireFromStack(t, d, "POST", nil)
	fireFromStack(t, d, "", []byte{})
	smashStack(8)
	if len(clones) != 3 {
		t.Fatalf("%d clones", len(clones))
	}
	checkAll(t, clones[0], "GET", "hello")
	checkAll(t, clones[1], "POST", "")
	checkAll(t, clones[2], "", "")
	for i, c := range clones {
		if c.Time() != times[i] || c.Marker() != d.Info() {
			t.Errorf("clone %d: time %d marker %v, want the event's %d and %v", i, c.Time(), c.Marker(), times[i], d.Info())
		}
	}
	if b := clones[1].Field(5).Bytes(); b != nil {
		t.Errorf("nil bytes cloned as %#v", b)
	}
	if b := clones[2].Field(5).Bytes(); b == nil || len(b) != 0 {
		t.Errorf("empty bytes cloned as %#v", b)
	}
	// A clone's byte slice is its own and has no room to spill over the
	// other values it shares memory with.
	c := clones[0]
	b := c.Field(5).Bytes()
	b[0] = 'J'
	_ = append(b, "XXXX"...)
	if got := c.Field(5).Bytes(); string(got) != "Jello" || c.Field(4).Str() != "GET" {
		t.Errorf("after writing the clone's bytes: %q %q", got, c.Field(4).Str())
	}
	// A clone of a clone is a copy too.
	cc := c.Clone()
	c.Field(5).Bytes()[0] = 'h'
	if got := string(cc.Field(5).Bytes()); got != "Jello" || cc.Time() != c.Time() {
		t.Errorf("clone of a clone: %q, time %d want %d", got, cc.Time(), c.Time())
	}
}

func TestCloneOfTypedMarkersOutlivesFire(t *testing.T) {
	m := marker.Define6(fresh("clone")+":typed", marker.String("s"), marker.Int("i"), marker.Duration("d"),
		marker.Uint8("u"), marker.Bool("b"), marker.Bytes("bs"))
	var clones []*marker.Event
	p, err := marker.Register(m.Info().Name(), func(e *marker.Event) { clones = append(clones, e.Clone()) })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	fire := func(i int) {
		buf := []byte(fmt.Sprintf("body-%d", i))
		m.Fire(fmt.Sprintf("s%d", i), -i, time.Duration(i)*time.Second, uint8(i), i%2 == 0, buf)
		copy(buf, "XXXXXX") // the caller reuses its buffer
	}
	for i := range 100 {
		fire(i)
		smashStack(1)
	}
	for i, c := range clones {
		got := fmt.Sprint(snapshotValues(c))
		want := fmt.Sprint([]any{fmt.Sprintf("s%d", i), int64(-i), time.Duration(i) * time.Second, uint64(i), i%2 == 0, fmt.Sprintf("body-%d", i)})
		if got != want {
			t.Errorf("clone %d = %s, want %s", i, got, want)
		}
	}
}

// TestClonesCrossGoroutines sends clones from many firing goroutines to
// readers on others, as a probe that hands events to a worker does; run
// it with -race.
func TestClonesCrossGoroutines(t *testing.T) {
	m := marker.Define3(fresh("clone")+":hammer", marker.String("who"), marker.Int("seq"), marker.Bytes("data"))
	ch := make(chan *marker.Event, 64)
	p, err := marker.Register(m.Info().Name(), func(e *marker.Event) { ch <- e.Clone() })
	if err != nil {
		t.Fatal(err)
	}
	const firers, perFirer = 4, 500
	var readers sync.WaitGroup
	errs := make(chan string, 10)
	counts := make([]int, firers)
	var mu sync.Mutex
	for range 2 {
		readers.Go(func() {
			for c := range ch {
				// Two readers may read one clone at once; here each reads its own.
				who, seq, data := c.Field(0).Str(), c.Field(1).Int(), string(c.Field(2).Bytes())
				var w int
				if _, err := fmt.Sscanf(who, "firer%d", &w); err != nil || data != fmt.Sprintf("%s/%d", who, seq) {
					select {
					case errs <- fmt.Sprintf("clone %q %d %q", who, seq, data):
					default:
					}
					continue
				}
				mu.Lock()
				counts[w]++
				mu.Unlock()
			}
		})
	}
	var firing sync.WaitGroup
	for w := range firers {
		firing.Go(func() {
			buf := make([]byte, 0, 32)
			for i := range perFirer {
				who := fmt.Sprintf("firer%d", w)
				buf = fmt.Appendf(buf[:0], "%s/%d", who, i)
				m.Fire(who, i, buf)
			}
		})
	}
	firing.Wait()
	p.Unregister()
	close(ch)
	readers.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for w, n := range counts {
		if n != perFirer {
			t.Errorf("firer %d: %d clones read, want %d", w, n, perFirer)
		}
	}
}
