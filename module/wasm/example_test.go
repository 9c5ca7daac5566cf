package wasm_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/wasm"
)

// A program that loads a plugin at start-up and calls its hook.
func Example() {
	ctx := context.Background()
	m, err := wasm.LoadFile(ctx, "classifier.wasm")
	if err != nil {
		log.Fatal(err)
	}
	category, err := m.Call(ctx, "on_request", []byte("GET /api/users"))
	if err != nil {
		log.Print(err) // the module trapped, overran or misbehaved; the host runs on
	}
	fmt.Printf("%s\n", category)
}

// A host with trusted signers, a module directory, a stricter policy and
// tighter limits; lsmod and taint.
func ExampleNewHost() {
	ctx := context.Background()
	keys, err := module.LoadKeyring("/etc/myservice/module-keys")
	if err != nil {
		log.Fatal(err)
	}
	h, err := wasm.NewHost(
		wasm.WithPolicy(module.Kernel),
		wasm.WithTrustedDir("/usr/lib/myservice/modules"),
		wasm.WithKeys(keys),
		wasm.WithLimits(wasm.Limits{MemoryPages: 256, EventRate: 10_000}),
		wasm.WithCacheDir("/var/cache/myservice/wasm"),
		wasm.WithOutput(os.Stderr),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close(ctx)
	if _, err := h.LoadFile(ctx, "/usr/lib/myservice/modules/classifier.wasm"); err != nil {
		log.Fatal(err)
	}
	fmt.Print(h.List())                    // lsmod
	fmt.Print(module.Report())             // tracemark taint
	_ = marker.All                         // the module's markers are in the registry, refused or not
	_ = h.Unload(ctx, "classifier", false) // rmmod
}
