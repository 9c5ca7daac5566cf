package main

import (
	"context"
	"fmt"
)

// demoPlugin tells about the demo service's plugin, the example module
// (examples/plugin) it loads into its sandbox, as lsmod sees it.
func demoPlugin(ctx context.Context, a *app, t *target) {
	rctx, cancel := a.requestCtx(ctx)
	defer cancel()
	list, err := t.client.Modules(rctx)
	if err != nil || len(list.Modules) == 0 {
		fmt.Fprintf(a.stdout, "   It runs without its plugin (it says why above): tracemark lsmod -p %d\n\n", t.pid)
		return
	}
	m := list.Modules[0]
	fmt.Fprintf(a.stdout, "   Its plugin (tracemark lsmod -p %d): %s %s, a binary-only request classifier in the WebAssembly sandbox; licence %s, taint %s, %s, %d markers of its own\n\n",
		t.pid, clean(m.Name), dash(clean(m.Version)), dash(clean(m.License)), dash(m.Taint), m.State, len(m.Markers))
}
