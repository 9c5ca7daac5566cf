// Package guest is the SDK for authors of tracemark modules: Go code that
// runs in the host's WebAssembly sandbox, defines its own markers and fires
// them, with an API that feels like package marker on the host.
//
//	var classified = guest.Define2("classifier:classified",
//		guest.String("category"), guest.Int64("score"),
//		guest.Stable, guest.Doc("a request was classified"))
//
//	classified.Fire("api", 30)
//
// Firing with arguments of the wrong types does not compile. Define markers
// at package level: the host learns them when it initializes the module.
// A definition the host refuses (a name the host or another module uses,
// say) makes a marker whose Fire does nothing; Err says why.
//
// # Hooks
//
// The host calls a module through exported functions with the signature
// func(unsafe.Pointer, uint32) uint64; [Handle] turns one into a plain
// func([]byte) []byte:
//
//	//go:wasmexport on_request
//	func onRequest(in unsafe.Pointer, n uint32) uint64 {
//		return guest.Handle(in, n, classify)
//	}
//
// # Building
//
// A module is a main package (with an empty main) built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm
//
// and then given its metadata section, which Go cannot emit: package
// [github.com/tracemark/tracemark/guest/build] does both, and signs the
// result if asked.
//
// # Cost
//
// Fire first tests the marker's enabled flag, which the host keeps in the
// module's memory (the tracemark_flags extension of ABI v1): a disabled
// marker costs a few nanoseconds, inlined, and no host call. An enabled
// one encodes its arguments (ABI v1, see package module) into the
// module's event buffer (64 KiB, the tracemark_events extension), which
// the host delivers when it is full and when the call into the module
// returns: no host call per event, and nothing allocated. (With a host
// that does not take the buffer, each event is a host call, as before.)
// A batched event's timestamp is therefore when the host delivered it,
// not when it fired; events keep their order. Strings and byte slices
// longer than MaxFieldBytes are truncated; the host repairs invalid UTF-8
// in strings rather than refusing them. An event to a host probe costs
// about 100 ns in all, 200 with a host call. Enabled also reads the flag, except for a
// module with more than 254 markers, whose later markers ask the host. A
// loop iteration in a module costs the host's stop check, about a
// nanosecond (see package module/wasm).
//
// Built for other platforms the package still compiles, so that a module's
// logic can be unit-tested natively: markers get made-up handles and events
// go nowhere. The SDK supports wasm and 64-bit platforms.
package guest
