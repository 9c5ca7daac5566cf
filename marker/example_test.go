package marker_test

import (
	"fmt"
	"time"

	"github.com/tracemark/tracemark/marker"
)

// Markers are defined once, at package level, next to the code they
// describe.
var requestDone = marker.Define3("example:request_done",
	marker.String("method"), marker.Int("status"), marker.Duration("latency"),
	marker.Stable, marker.Doc("an HTTP request was answered"))

func Example() {
	// A probe connected by glob sees every matching marker, including
	// markers defined later.
	p, err := marker.Register("example:*", func(e *marker.Event) {
		method, status, latency := e.Field(0).Str(), e.Field(1).Int(), e.Field(2).Duration()
		fmt.Println(e.Marker().Name(), method, status, latency)
	})
	if err != nil {
		panic(err)
	}
	defer p.Unregister()

	requestDone.Fire("GET", 200, 1500*time.Microsecond)
	// Output: example:request_done GET 200 1.5ms
}

func ExampleMarker3_Fire() {
	// Nobody listens: Fire costs one atomic load and a branch.
	requestDone.Fire("GET", 200, time.Millisecond)

	// Arguments that are costly to compute deserve a guard.
	if requestDone.Enabled() {
		requestDone.Fire("GET", 200, time.Millisecond)
	}
	fmt.Println(requestDone.Enabled())
	// Output: false
}

func ExampleRegister() {
	queryDone := marker.Define2("example_db:query", marker.String("table"), marker.Int64("rows"))

	// A probe can insist on the schema it was written for.
	p, err := marker.Register("example_db:query", func(e *marker.Event) {
		rows, _ := e.FieldByName("rows")
		fmt.Println("rows:", rows.Int())
	}, marker.ExpectFormat("table=%s rows=%d"))
	if err != nil {
		panic(err)
	}
	queryDone.Fire("users", 3)
	p.Unregister()
	queryDone.Fire("users", 4) // no probe any more

	_, err = marker.Register("example_db:query", func(*marker.Event) {}, marker.ExpectFormat("table=%s"))
	fmt.Println(err != nil)
	// Output:
	// rows: 3
	// true
}

func ExampleMatch() {
	marker.Define1("example_cache:miss", marker.String("key"), marker.Doc("a cache lookup missed"))
	matches, _ := marker.Match("example_cache:*")
	for _, m := range matches {
		fmt.Printf("%s  %s  %s  %s\n", m.Name(), m.Format(), m.Stability(), m.Doc())
	}
	// Output: example_cache:miss  key=%s  unstable  a cache lookup missed
}

func ExampleEvent_Clone() {
	jobDone := marker.Define2("example_jobs:done", marker.String("job"), marker.Duration("took"))

	// The probe hands events to another goroutine, so it sends clones:
	// the Event itself is valid only until the probe returns.
	events := make(chan *marker.Event, 16)
	p, err := marker.Register("example_jobs:done", func(e *marker.Event) {
		select {
		case events <- e.Clone():
		default: // full: drop rather than block the instrumented code
		}
	})
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range events {
			fmt.Println(e.Marker().Name(), e.Field(0).Str(), e.Field(1).Duration())
		}
	}()

	jobDone.Fire("backup", 3*time.Second)
	jobDone.Fire("index", 250*time.Millisecond)
	p.Unregister()
	close(events)
	<-done
	// Output:
	// example_jobs:done backup 3s
	// example_jobs:done index 250ms
}
