// Package marker defines static tracepoints ("markers") for Go programs:
// named, typed events placed in the source that cost almost nothing until
// someone listens, and the probes that listen to them.
//
// It is modelled on Linux kernel markers and LTTng tracepoints. A marker is
// defined once, at package level, with a name "provider:event" and typed
// fields, and fired where the event happens:
//
//	var requestDone = marker.Define3("http:request_done",
//		marker.String("method"), marker.Int("status"), marker.Duration("latency"),
//		marker.Stable, marker.Doc("an HTTP request was answered"))
//
//	requestDone.Fire(r.Method, status, time.Since(start))
//
// Firing with arguments of the wrong types does not compile.
//
// # Cost
//
// A marker nobody listens to costs one atomic load and a branch (well under
// a nanosecond, no allocation): markers are meant to stay in release
// builds. The arguments are still evaluated, as for any function call;
// guard arguments that are expensive to compute with Enabled:
//
//	if requestDone.Enabled() {
//		requestDone.Fire(r.Method, status, expensiveLatency())
//	}
//
// A marker with a probe builds an [Event] on the firing goroutine's stack,
// pointing at the arguments where they are, and calls the probes in turn:
// under ten nanoseconds with one no-op probe, still without allocating.
//
// # Names and schemas
//
// Both parts of a name match [a-z][a-z0-9_]*, and so do field names. A
// marker has at most [MaxFields] fields; the typed Define functions go up
// to six. Defining the same name twice with the same schema gives one
// marker with several call sites; with a different schema, Define panics
// with a [*ConflictError] naming both source locations. Definitions are
// code, so a bad one is a bug that the first test run finds, as with
// regexp.MustCompile.
//
// Every marker carries what an operator needs without reading the code
// (see [Info]): provider and event, fields and their kinds, a format string
// rendered from the schema ("method=%s status=%d latency=%v"), the source
// location of its definition, the Go module and version it belongs to
// (from the binary's build info), an optional description, a [Stability]
// level, and its state.
//
// # Registry
//
// [All] lists every marker, [Lookup] finds one by exact name and [Match]
// by glob ("http:*", "*:request_*").
//
// # Probes
//
// A probe is a function connected to markers by name or glob with
// [Register]. The first probe connected to a marker enables it; removing
// the last disables it. A probe registered by glob also connects to
// matching markers defined later, by packages initialised later or modules
// loaded at run time. A probe may state the schema it expects
// ([ExpectFields], [ExpectFormat]); a mismatch is refused, as the kernel
// refused a probe whose format did not match the marker's.
//
// After [Probe.Unregister] returns, the probe is never called again, even by
// Fire calls running concurrently on other goroutines: Unregister waits for
// a grace period, like the kernel's synchronize after unregistering a
// probe. A probe that panics is cut off; the panic value and stack are kept
// ([Probe.Fault], [RecentFaults], [FaultCount]) and the program and the
// marker's other probes carry on.
//
// Probes run synchronously on the firing goroutine: they must be quick and
// must not keep the *Event, its Values, or strings and byte slices read
// from it, after they return. A probe that needs an event later keeps an
// owned copy from [Event.Clone]. Building with the tracemark_debug tag
// makes any use of a kept Event panic with a message naming its marker:
//
//	go test -tags tracemark_debug ./...
//
// Recording sessions, which copy events into buffers and write traces, are
// built on probes in package session.
//
// # Go's execution tracer
//
// While Go's execution tracer runs (runtime/trace.Start, or a
// runtime/trace.FlightRecorder), the events of enabled markers are also
// log events in it, on the goroutine that fired them: the category is the
// marker's name and the message its fields, "method=GET status=200
// latency=1.5ms", so that `go tool trace` shows them on the goroutine
// timelines. Disabled markers log nothing, and cost the same whether the
// tracer runs or not; an enabled marker checks runtime/trace.IsEnabled
// (one atomic load) before its probes.
package marker
