package wasm

import (
	"errors"

	"github.com/tracemark/tracemark/module"
)

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
	// ErrCallStuck is wrapped by the error of an unload (Module.Unload,
	// Host.Close) during which a call into the module did not end in time,
	// though stopped: a probe that does not return, or a fault of the
	// sandbox. The module takes no new call and is unloaded when the call
	// ends.
	ErrCallStuck = errors.New("module call did not end")
	// ErrSignatureRequired is returned by Load when WithRequireSignature
	// is set and the module is not signed by a trusted key.
	ErrSignatureRequired = errors.New("module not signed by a trusted key")
	// ErrMemoryLimit is returned by Load for a module whose memory at start
	// is over Limits.MemoryPages.
	ErrMemoryLimit = errors.New("module memory over the limit")
	// ErrTooBig is returned by Load for a file over Limits.MaxModuleBytes.
	// It is module.ErrTooBig.
	ErrTooBig = module.ErrTooBig
	// ErrCodeLimit is wrapped by the *LimitError of Load for a module
	// whose code is over one of the limits checked before compiling.
	ErrCodeLimit = errors.New("module code over a limit")
	// ErrCompileTimeout is wrapped by the error of Load for a module whose
	// compilation overran Limits.CompileTimeout.
	ErrCompileTimeout = errors.New("module compilation overran its deadline")
	// ErrNotReactor is returned by Load for a WASI command (it exports
	// _start but not _initialize): build Go modules with
	// -buildmode=c-shared.
	ErrNotReactor = errors.New("module is a command, not a reactor")
)

// LimitError is the error of Load for a module whose code is over one of
// the limits checked before compiling it. It wraps ErrCodeLimit.
type LimitError struct {
	// Limit is the name of the field of Limits: "MaxFunctions",
	// "MaxFunctionBytes", "MaxNesting", "MaxLocals", "MaxBrTableTargets",
	// "MaxTableElements" or "MaxCodeUnits", or "CodeUnitsPerByte" (the
	// constant).
	Limit string
	// Function is the index of the function over the limit (imports
	// first), or -1; Table the table's, or -1.
	Function, Table int
	// Value is what the module has (or at least), Max the limit.
	Value, Max uint64

	msg string
}

// Error says what is over which limit: "function 12 nests blocks 5000
// deep; the limit is 1000 (Limits.MaxNesting)".
func (e *LimitError) Error() string {
	if e.Limit == "CodeUnitsPerByte" {
		return e.msg + " (CodeUnitsPerByte)"
	}
	return e.msg + " (Limits." + e.Limit + ")"
}

// Is reports whether target is ErrCodeLimit.
func (e *LimitError) Is(target error) bool { return target == ErrCodeLimit }
