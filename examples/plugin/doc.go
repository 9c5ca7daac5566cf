// Command plugin is an example of a binary-only third-party module: a
// request classifier for the demo HTTP service, built with the guest SDK
// for the tracemark sandbox.
//
// The service calls its hook on_request with "METHOD PATH" for every
// request; the plugin answers with a category (static, api, admin, health,
// other, suspicious), keeps per-category counts, and fires its own
// markers, which show up in `tracemark list` beside the service's:
//
//	classifier:classified(category=%s score=%d seen=%u)
//	classifier:suspicious(method=%s path=%s reason=%s)
//
// It declares itself "Proprietary", like the closed plugins the sandbox
// exists for: under the default policy its markers are used (taint P, and
// O and E unless installed and signed), under the kernel policy they are
// listed as refused.
//
// Build it with pluginbuild.Path (tests and the demo do), or by hand:
//
//	GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o plugin.wasm ./examples/plugin
//
// followed by appending the metadata section (module.SetModinfo).
// Built natively, the command only says so.
package main
