package module_test

import (
	"bytes"
	"fmt"

	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

func ExampleGPLCompatible() {
	for _, l := range []string{"GPL v2", "Dual MIT/GPL", "Apache-2.0 OR MIT", "Proprietary", ""} {
		fmt.Printf("%-18q %v\n", l, module.GPLCompatible(l))
	}
	// Output:
	// "GPL v2"           true
	// "Dual MIT/GPL"     true
	// "Apache-2.0 OR MIT" true
	// "Proprietary"      false
	// ""                 false
}

func ExamplePolicy_Check() {
	plugin := module.TaintProprietary | module.TaintOutOfTree | module.TaintUnsigned
	for _, p := range []module.Policy{module.Strict, module.Kernel, module.Proprietary, module.Open} {
		if err := p.Check(plugin); err != nil {
			fmt.Println(err)
		} else {
			fmt.Printf("policy %q uses the markers of a %s module\n", p, plugin)
		}
	}
	// Output:
	// policy "strict" refuses taint POE (proprietary module loaded: its licence is not GPL-compatible, or it declares none)
	// policy "kernel" refuses taint P (proprietary module loaded: its licence is not GPL-compatible, or it declares none)
	// policy "proprietary" uses the markers of a POE module
	// policy "open" uses the markers of a POE module
}

func ExampleTaint() {
	t := module.TaintDied | module.TaintOutOfTree | module.TaintUnsigned
	fmt.Println(t)
	for _, f := range t.Flags() {
		fmt.Printf("%c  %s\n", f.Letter(), f.Meaning())
	}
	// Output:
	// DOE
	// D  a module died: it trapped or exited during a call and was stopped
	// O  out-of-tree module loaded: not from the host's trusted module directory
	// E  unsigned module loaded, or signed by a key the host does not trust, or with a bad signature
}

// A module's life before it is loaded: metadata, signature, inspection.
func ExampleInspect() {
	// A module as a compiler would leave it (here: one empty hook).
	b := wasmbin.NewBuilder()
	b.Export("on_request", b.Func(wasmbin.Sig([]byte{wasmbin.I32, wasmbin.I32}, wasmbin.I64), nil, wasmbin.I64Const(0)))
	wasm := b.Bytes()

	// Append its metadata, then sign it (what `tracemark sign` does).
	wasm, err := module.SetModinfo(wasm, &module.Modinfo{Name: "hello", Version: "v0.1.0", License: "MIT", ABI: module.ABIVersion})
	if err != nil {
		panic(err)
	}
	key, _ := module.GenerateKey("release", bytes.NewReader(make([]byte, 32))) // a fixed key, for the example
	wasm, _ = module.Sign(wasm, key)

	// What `tracemark modinfo` shows, for a host that trusts the key.
	fi, err := module.Inspect(wasm, module.Keyring{key.Public()})
	if err != nil {
		panic(err)
	}
	fmt.Println(fi.Modinfo.Name, fi.GPLCompatible, fi.Signature, fi.Taint == 0)
	// Output:
	// hello true release (ed25519:139e3940e64b5491) true
}
