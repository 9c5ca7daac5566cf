package wasm

import "errors"

// Errors of loading, calling and unloading modules. Errors about a
// module's bytes wrap the sentinels of package module instead:
// module.ErrNotWasm, module.ErrNoModinfo, module.ErrBadModinfo and
// module.ErrABIMismatch.
var (
	// ErrTrap is wrapped by the error of a call during which the module
	// died: it trapped (unreachable, out-of-bounds access, division by
	// zero, a Go panic) or exited. The module is tainted D and dead.
	ErrTrap = errors.New("module died")
	// ErrDeadline is wrapped by the error of a call that overran its
	// deadline. The sandbox killed the module: it is tainted L and dead.
	ErrDeadline = errors.New("module call overran its deadline")
	// ErrABIViolation is wrapped by the error of a call during which the
	// module broke ABI v1: garbage argument encodings, invalid UTF-8,
	// oversized fields, unknown markers, pointers outside its memory, bad
	// definitions. The offending host call was refused and the module
	// tainted W; it stays loaded, and policy decides about its markers.
	// Each such error also wraps one of the specific errors below.
	ErrABIViolation = errors.New("module broke ABI v1")

	// ErrOutOfBounds: a pointer and length outside the module's memory.
	ErrOutOfBounds = errors.New("pointer out of bounds")
	// ErrMalformed: an encoding that does not follow ABI v1 (truncated,
	// trailing bytes, a bool that is neither 0 nor 1, a bad kind code).
	ErrMalformed = errors.New("malformed encoding")
	// ErrInvalidUTF8: a string field or name that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrTooLarge: a field or buffer over its ABI v1 limit.
	ErrTooLarge = errors.New("too large")
	// ErrUnknownMarker: an event for a marker handle the module did not
	// define.
	ErrUnknownMarker = errors.New("unknown marker")
	// ErrMarkerExists: a marker name that belongs to the host or to
	// another module, or that the module defined before with another
	// schema.
	ErrMarkerExists = errors.New("marker name taken")
	// ErrTooManyMarkers: more markers than Limits.MaxMarkers.
	ErrTooManyMarkers = errors.New("too many markers")
	// ErrBadDefinition: a marker definition the registry refuses (bad
	// name, bad field name, too many fields).
	ErrBadDefinition = errors.New("invalid marker definition")

	// ErrDead is returned by calls into a module that died or was killed.
	ErrDead = errors.New("module is dead")
	// ErrUnloaded is returned by calls into a module that was unloaded.
	ErrUnloaded = errors.New("module unloaded")
	// ErrNoExport is returned by Call for an export that does not exist or
	// is not a hook (ptr i32, len i32) -> i64.
	ErrNoExport = errors.New("no such hook")
	// ErrExists is returned by Load for a module whose name is taken.
	ErrExists = errors.New("module already loaded")
	// ErrNotLoaded is returned for a module name that is not loaded.
	ErrNotLoaded = errors.New("module not loaded")
	// ErrImport is returned by Load for a module with an import the host
	// cannot provide even when the load is forced (not a function, or of
	// an unknown type). It comes with module.ErrABIMismatch.
	ErrImport = errors.New("import cannot be provided, even when forced")
	// ErrInUse is returned by a non-forced unload of a module whose
	// markers have probes (someone is tracing them).
	ErrInUse = errors.New("module in use")
	// ErrSignatureRequired is returned by Load when Config.RequireSignature
	// is set and the module is not signed by a trusted key.
	ErrSignatureRequired = errors.New("module not signed by a trusted key")
	// ErrMemoryLimit is returned by Load for a module whose memory at start
	// is over Limits.MemoryPages.
	ErrMemoryLimit = errors.New("module memory over the limit")
	// ErrTooBig is returned by Load for a file over Limits.MaxModuleBytes.
	ErrTooBig = errors.New("module file too large")
	// ErrNotReactor is returned by Load for a WASI command (it exports
	// _start but not _initialize): build Go modules with
	// -buildmode=c-shared.
	ErrNotReactor = errors.New("module is a command, not a reactor")
)
