// Package wasm runs loadable modules in a WebAssembly sandbox (wazero,
// pure Go) and keeps the registry of loaded modules: what `tracemark
// insmod`, `rmmod`, `lsmod` and `taint` act on. Package
// [github.com/tracemark/tracemark/module] describes the module model,
// taint, policies and ABI v1; this package enforces them.
//
// # Loading
//
// A program that lets modules in makes a [Host] (or uses [DefaultHost]) and
// loads files into it:
//
//	m, err := wasm.LoadFile(ctx, "classifier.wasm")
//	out, err := m.Call(ctx, "on_request", []byte("GET /api/users"))
//
// Loading reads the metadata and the signature and checks every import
// against ABI v1 before compiling or running anything. It refuses a file
// that is not a module, has malformed metadata (even with WithForce), fails
// the ABI check (unless WithForce: taint F), is not signed by a trusted key
// when the host requires it, or has the name of a loaded module. It then
// compiles the module (see Compiling and Caching),
// taints the module P, O, E and F as they apply, and runs its start
// function and its _initialize export under Limits.InitTimeout. A module
// that dies or overruns during initialization is not loaded, but the
// process keeps the taint (D or L): its code ran.
//
// NewHost takes options (WithPolicy, WithTrustedDir, WithKeys,
// WithRequireSignature, WithLimits, WithCache, WithCacheDir, WithOutput,
// WithUnloadDead), and so do the loads (WithForce, WithName,
// WithLoadPolicy, WithLoadLimits); each changes one default and documents
// the values it accepts, and a value it does not accept is an error
// naming the option.
//
// Each module gets its own wazero runtime: its own memory cap, its own
// imports, and nothing to share with other modules (its instances, see
// Concurrency, share its runtime and compiled code).
//
// A module's linear memory is a mapping of its own, reserved at its
// limit (without swap: only the pages it touches count) and unmapped when
// its instance is released: growing it copies nothing.
//
// A module needs no linear memory, table, export or start function: a
// module that is nothing but its metadata loads, lists and unloads. A
// memory is needed only to pass bytes: without one, a hook can be called
// without input and return no output, and any input, output, definition
// or event arguments it passes are out of bounds (an ABI violation, taint
// W), as is an input for a module whose tracemark_alloc points outside
// its memory.
//
// # Limits
//
// Every module has a memory cap (Limits.MemoryPages), a deadline on every
// call into it (Limits.CallTimeout: CPU time of the calling thread where
// the system measures it, plus time asleep, so that a busy machine does
// not kill a module; checked by one watchdog goroutine per host every
// eighth of the shortest deadline, 1 to 10 ms, so that a call is stopped
// never before its deadline and at most two such ticks after it; see
// Stopping), and an event budget (Limits.EventRate per second with a
// burst of Limits.EventBurst): events over the budget are dropped and
// counted, the module is not blamed. A module that sleeps cannot sleep past
// its deadline. A call does not inherit the caller's cancellation (a client
// that hangs up must not kill a module); the deadline is the module's.
//
// # Compiling
//
// No module file, whatever its shape, may make the host spend much to
// refuse it. LoadFile reads at most Limits.MaxModuleBytes+1 bytes and only
// from a regular file. Before wazero compiles anything, the host walks
// every section and function body and refuses, with a *LimitError that
// names the limit and the value ("function 12 nests blocks 5000 deep; the
// limit is 2048 (Limits.MaxNesting)"), a module over Limits.MaxFunctions,
// MaxFunctionBytes, MaxNesting, MaxLocals, MaxBrTableTargets,
// MaxTableElements, or over its budget of compile work: MaxCodeUnits in
// all and CodeUnitsPerByte per byte of the file. The units approximate
// the compiler's costs as measured (about a microsecond each): nested
// blocks and br_table targets cost it the square of their number, so
// they are capped and weigh more. The walk costs tens of milliseconds
// for 60 MB and allocates nothing that grows with the module. A Go module
// of 2.7 MB has about a million units (a second of compiling); the
// defaults admit Go modules of about 10 MB.
//
// Compilation then has a deadline, Limits.CompileTimeout, a backstop for
// what the limits do not foresee, and the caller's ctx cancels it: wazero
// checks both between functions (it compiles with two workers, the only
// way it checks). Once the module's code runs (its initializer), the
// load no longer follows ctx's cancellation. A refused or failed load
// leaves nothing behind: its name is free, its runtime closed, its
// compiled code released; unloading a module releases its compiled code
// too, so that a host that loads and unloads distinct modules does not
// grow.
//
// # Caching
//
// A host keeps compiled modules in a cache on disk (Config.CacheDir, by
// default "compiled" in the user's cache directory, bounded by
// Config.CacheBytes, least recently used entries evicted), so that only
// the first load of a module compiles it: a second load, in the same
// process or the next, reads its code. An entry is keyed by the module's
// bytes and the build (wazero's, tracemark's and Go's versions; for a
// build that no version names exactly, such as a work tree with changes,
// the executable), and holds, besides wazero's compiled code, the module
// as checked and instrumented and the compile limits it was checked
// under: a second load under limits no smaller neither walks nor
// instruments the module again. wazero runs the code of a cache entry as
// it finds it, so the host never lets wazero read its cache directory:
// each entry is authenticated (AES-GCM's GMAC) under a key that only the
// directory's user can read, and given to wazero in a new private
// directory for that one compilation, as a hard link that the host maps
// and verifies there (a copy where the file system has no hard links);
// an entry must be a regular file of the user that nobody else may
// write. The module in an entry is verified before wazero decodes it,
// and the compiled code, in a large entry, on another goroutine while
// wazero decodes and validates the module: wazero finds its file only
// once it is verified (if it looked before, its compilation is
// cancelled and begun again). An entry that fails verification (corrupted, truncated, swapped
// with another's, made under another key, another user's or writable by
// others) is removed and the module compiled again; a cache that cannot
// be read or written (not writable, full) costs compiling, never the
// load. A directory that another user owns or may write to, or a key
// file others may read, is not used at all. Host.CacheStats counts hits,
// misses, rejected entries and errors, and Config.Log says what went
// wrong.
//
// # Stopping
//
// Before compiling a module the host rewrites it (wasmbin.Instrument): it
// adds a global that only the host sets, and a test of it that traps
// once it is set at the head of every loop and at the entry of every
// function that calls (code without loops is not bounded: a recursion
// can make 2^depth calls), so that the host can stop a module anywhere
// without wazero's context watch (which cost a goroutine
// per call and a trip out of compiled code at every loop iteration). The
// host's watchdog and a forced unload set it; a call that the host
// stopped fails even if it returns. Every 65536 tests the module
// leaves compiled code for a moment (a memory.grow of nothing), because a
// goroutine in compiled code cannot be preempted and the host's watchdog
// needs the Go scheduler: without it a looping module would hold its P,
// and with GOMAXPROCS=1 never be stopped. A module without a memory gets
// an empty one for this. In code compiled by Go, whose every jump goes
// back to its function's dispatch loop, the rewrite also turns the
// forward jumps into plain branches to their block: they cannot loop, and
// passing the loop head's test for each cost Go code more than the jump
// (backward jumps, Go's loops, still pass it). The rewrite also joins
// the module's data segments that are at most 64 bytes apart (Go starts
// one at every run of 8 zero bytes: tens of thousands, which wazero
// decodes and writes one by one at each load), when that cannot change
// the memory the module starts with (wasmbin.MergeData). Its start function is
// called after instantiation, under the load's deadline, like
// _initialize. A module
// that exports the host's names (tracemark.stop, tracemark.start) or whose
// code uses a global it does not declare is refused as malformed.
//
// # Faults
//
// Whatever a module does, the host keeps running and loses no events of
// its own; the call fails with an error saying what happened:
//
//	trap (unreachable, bad memory access, Go panic), exit   ErrTrap      taint D  module dead
//	call overran its deadline                               ErrDeadline  taint L  module dead (the host stopped it)
//	memory cap reached                                      (the module's memory.grow fails; a Go module then dies: D)
//	garbage arguments, invalid UTF-8, oversized field,      ErrABIViolation and a specific error
//	unknown marker, pointer out of bounds, bad definition                taint W  module alive; policy re-applied
//	corrupt event buffer (header or record)                 the same     valid records before it delivered, unreadable ones dropped and counted
//	event flood                                             no error     events over the budget dropped and counted
//	calling a function the host lacks (forced module)       ErrTrap      taint D  module dead
//
// Events the module batched (see Cost) are delivered when the call
// ends, whether it returned, trapped or overran: the events a dying
// module fired before its trap still arrive, as when each was a host call.
// A dead module's instance is released at once; it stays listed as dead,
// its markers listed as refused with the cause, until it is unloaded
// (WithUnloadDead unloads it at once instead). Calls into it fail with
// ErrDead. After an ABI violation the module stays alive: under the
// default policy its markers are then refused (W is not tolerated), under
// open they are still used. Probes that panic are cut off by package
// marker; the module is not blamed, the process is tainted W.
//
// # Unloading
//
// [Module.Unload] (rmmod) stops the instance and removes the module's
// markers from the registry. Without force it waits for a running call to
// end and refuses, with ErrInUse, while any of the module's markers has
// probes: someone is tracing it. With force it unloads anyway, stopping a
// running call (which fails with ErrUnloaded), and taints the module and
// the process R if it had to. Process taint stays after unloading. The
// wait for a running call ends with ctx, and in any case after the
// call's wall-time backstop plus 10 s: a call the host could not stop (a
// probe that does not return) fails the unload with ErrCallStuck instead
// of hanging it, and the module is unloaded when the call ends.
//
// # Listing
//
// [Host.List] is lsmod: name, version, licence, signer, taint letters,
// state (live, refused, dead), markers with their formats and refusal,
// counters (calls, events fired, delivered, dropped, errors), memory. Its
// String method renders the table; the Status values are JSON-friendly.
// module.Report is `tracemark taint`.
//
// # Concurrency
//
// A module instance runs one call at a time. A module may have a pool of
// instances (Limits.Instances, default 1), each with its own memory,
// made as concurrent calls need them and kept; a call takes an idle
// instance, makes one while there are fewer than the limit, or waits for
// one. What the limits mean for a pool:
//
//	memory        each instance may grow to MemoryPages/Instances pages: the
//	              module as a whole stays within MemoryPages; a module that
//	              needs more than its share at start is refused
//	event budget  each instance has EventRate/Instances and
//	              EventBurst/Instances
//	deadline      per call, as for one instance
//	death         a trap or an overrun in any instance kills the module
//	              (taint D or L): calls running in the other instances are
//	              stopped and fail with ErrDead, every instance is released
//	unloading     waits for every running call (force: stops them, taint R);
//	              callers waiting for an instance fail with ErrUnloaded
//	taint, policy, markers, counters
//	              the module's, whichever instance caused them; handles are
//	              the module's, and every instance's enabled flags are kept
//
// Calls into different instances share nothing that a call writes, and
// read nothing that another call writes: a call takes the instance that
// the last call on its P (the Go scheduler's processor) took if it is
// idle, else the first idle instance it can lock, and gives it back by
// unlocking it; it counts its calls and events in the instance, on cache
// lines of its own; Status and Host.Stats sum the instances. Goroutines
// calling at once on different Ps thus keep to an instance each, its
// memory in their core's cache. The pool's lock is taken only while
// callers wait for an instance.
//
// Call returns its output in a new slice; AppendCall appends it to the
// caller's buffer, so that a caller reusing one makes no garbage per call
// (from two goroutines, the collector's work on that garbage takes CPU
// from the calls).
//
// Probes of a module's markers run on the calling goroutine during the
// call and must not call into the same module. Everything else is safe
// for concurrent use.
//
// # Cost
//
// Measured with go test -bench on a quiet two-core machine (load average
// under 1.5; the ranges are three runs, five for loads; in brackets the
// numbers before this work, some taken under load):
//
//	disabled marker, Go guest (BenchmarkFireDisabled/go)        1.61-1.64 ns (5.1-5.2 ns of CPU)
//	disabled marker, hand-written (BenchmarkFireDisabled/raw)   0.80 ns (a load and a branch)
//	event to a no-op probe, Go guest (FireFromModule/probe)     70-72 ns (153-157 ns of CPU)
//	  the same without the event buffer (probe/unbatched)       152-156 ns
//	event to a no-op probe, hand-written (FireFromRawModule)    80-210 ns under load (a host call per event)
//	hook call, echo (BenchmarkCallHook/echo/call)               0.48-0.49 µs, 0.43 µs with AppendCall (5.6-10 µs with a timer per call)
//	hook call, example plugin (BenchmarkCallHook/plugin/call)   1.42-1.45 µs, 1.37 µs with AppendCall
//	CPU per call from 1 and from 2 goroutines into 2 instances (BenchmarkCallHookSpeedup):
//	  echo                                                      0.48 and 0.50-0.51 µs (0.65-0.70 and 0.77-0.85 looking from the first instance)
//	  example plugin                                            1.48-1.50 and 1.51-1.54 µs (1.71-2.07 and 1.83-2.14)
//	calls from 2 goroutines against 1 (Call; AppendCall), and the control's in the same iterations:
//	  echo                                                      1.77-1.84; 1.81-1.99 (1.31-1.56, one instance lock)
//	  example plugin                                            1.92-1.97; 1.96-2.05 (1.56-1.80)
//	  control, a loop of pure Go                                1.76-2.01
//	second load of the example plugin (LoadPlugin/cached)       39-42 ms, 45-49 ms of CPU (50.6-53.1 ms, 57-60 ms of CPU)
//	  with wazero's own, unverified cache (LoadPlugin/wazerodir) 72-163 ms (at a load average of 5)
//	cold load (LoadPlugin/cold)                                 about 770 ms
//
// Two goroutines calling into two instances share nothing that a
// call writes or reads of the other's, so they scale with the cores they
// get: from two goroutines a call costs 1-7 % more CPU than from one (it
// cost 5-24 % more when calls looked for an instance from the first).
// With Call, the collector's work on the copies of the output takes
// some of a core from two goroutines calling (it runs on the idle core
// when one does); AppendCall into a reused buffer makes no garbage, and
// its calls scale as the pure-Go control does. A second load is mostly wazero's work: decoding
// and validating the module again (it always validates: about 20 ms of
// CPU for the plugin), hashing it (3 ms), reading its compiled code (7
// ms, mostly faulting in the 10 MB it copies it to), instantiating and
// the Go module's initializer (2.5 ms); the host's own part, on the
// loading goroutine, is about 3 ms (reading the file, hashing its halves
// on two cores, mapping the entry and verifying its module; its compiled
// code is verified on the other core meanwhile), see the metrics of
// LoadPlugin/cached by phase.
//
// A disabled module marker does not call the host, and from a Go guest
// costs about twice a hand-written module's load and branch: the host's
// instrumentation turns Go's forward jumps, which Go's wasm backend sends
// through its function's dispatch loop, into plain branches (backward
// ones, loops, keep the loop head's stop check). The host keeps a
// module's enabled flags (ABI v1's tracemark_flags extension, see package
// module) in its memory, and the guest SDK's Fire, inlined, tests the
// marker's flag first. Keeping the flags current costs the host one atomic
// load per call and per host call, and a rewrite of the flags when any
// marker changed (marker.EnabledChanges).
//
// An enabled event from the guest SDK is appended to the module's event
// buffer (the tracemark_events extension of ABI v1, see package module),
// which the host delivers when it fills (64 KiB for the SDK) and when
// the call returns: wazero's exit from compiled code to a Go host function,
// 60-100 ns on a busy machine and most of what an event cost, is paid once
// per buffer. Each event pays the budget, the decoding against the schema
// (no copy: strings point into the module's memory while the probes run)
// and marker.Dynamic.Fire; the rest is Go's code in the module. A batched
// event's timestamp (marker.Event.Time) is the time the host delivered it,
// at most the call's duration after it fired; WithoutEventBuffer gives
// each event a host call, and its firing time, as before. The CPU times
// above are the process's (getrusage) per event, the wall times those of
// ns/op; "before" is the previous code, run alternately with this one.
//
// A call into a hook pays for locking the goroutine to its thread,
// reading the thread's id (from the Go runtime's M, a nanosecond, where
// internal/rt's self-check passes; else gettid, a system call of about
// 80 ns), a few atomic operations that tell the host's watchdog the call
// runs, copying the input in and the output out; no goroutine, timer or
// clock reading per call (see Limits).
// A loop iteration in a module costs the stop test and the fuel count
// (see Stopping), about a nanosecond.
//
// The guest SDK's Fire is generated without loops or branches (but for
// the enabled test): it was written when every taken branch of Go code in
// a module cost a trip to the host, and still costs nothing to keep.
package wasm
