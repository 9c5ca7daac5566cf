package module

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// ABI version 1, the interface between a module and the host. The package
// documentation describes it in full; these are its constants.
const (
	// ABIVersion is the version of the host ABI, the "abi" of the metadata.
	ABIVersion = 1
	// ABINamespace is the import module name of ABI v1. A v2 would use
	// "tracemark_v2" and could be offered beside v1.
	ABINamespace = "tracemark_v1"
	// WASINamespace is the WASI preview 1 namespace. Go's wasip1 runtime
	// needs it; the sandbox gives it no files, no environment and no
	// arguments.
	WASINamespace = "wasi_snapshot_preview1"

	// MaxFieldBytes is the largest string or byte-slice field ABI v1
	// accepts in one event.
	MaxFieldBytes = 4096
	// MaxArgsBytes is the largest argument buffer of one fire call.
	MaxArgsBytes = 64 << 10
	// MaxEventBufferBytes is the largest event buffer (ExportEvents) the
	// host accepts.
	MaxEventBufferBytes = 1 << 20
	// MaxDefineBytes is the largest definition buffer of one define call.
	MaxDefineBytes = 4096
	// MaxDocBytes is the largest marker description.
	MaxDocBytes = 1024
)

// Results of the ABI v1 host functions: 0 and above is success, below zero
// an error, after which the host also records the violation (taint W).
const (
	ResultOK      = 0  // delivered, or nobody listens
	ResultDropped = 1  // over the module's event budget: dropped and counted
	ResultRefused = 2  // the module's markers are refused by policy
	ResultFault   = -1 // a pointer and length outside the module's memory
	ResultInvalid = -2 // malformed encoding
	ResultBadMark = -3 // no marker with this handle
	ResultUTF8    = -4 // a string or name that is not valid UTF-8
	ResultTooBig  = -5 // a field or buffer over its limit
	ResultExists  = -6 // the marker name belongs to the host or another module
	ResultLimit   = -7 // too many markers for this module
)

// The ABI v1 kind codes of marker fields. They are part of the ABI and
// never change, whatever marker.Kind's values become.
var abiKinds = [...]marker.Kind{
	1:  marker.KindInt8,
	2:  marker.KindInt16,
	3:  marker.KindInt32,
	4:  marker.KindInt64,
	5:  marker.KindUint8,
	6:  marker.KindUint16,
	7:  marker.KindUint32,
	8:  marker.KindUint64,
	9:  marker.KindFloat32,
	10: marker.KindFloat64,
	11: marker.KindBool,
	12: marker.KindString,
	13: marker.KindBytes,
	14: marker.KindDuration,
}

// KindLenient, or'ed into the kind code of a string field in a definition,
// asks the host to replace invalid UTF-8 in that field by U+FFFD instead
// of refusing the event. The guest SDK sets it, so that a module need not
// scan its strings (each loop iteration in a sandboxed module costs a
// deadline check in the host). Without it, invalid UTF-8 is an ABI
// violation.
const KindLenient = 0x80

// KindFromCode returns the marker kind of an ABI v1 kind code.
func KindFromCode(c byte) (marker.Kind, bool) {
	if int(c) < len(abiKinds) && abiKinds[c] != marker.KindInvalid {
		return abiKinds[c], true
	}
	return marker.KindInvalid, false
}

// KindCode returns the ABI v1 code of a marker kind, or 0.
func KindCode(k marker.Kind) byte {
	for c, kk := range abiKinds {
		if kk == k && k != marker.KindInvalid {
			return byte(c)
		}
	}
	return 0
}

// HostFunctions is ABI v1: the functions the host offers in ABINamespace
// and their signatures.
var HostFunctions = map[string]wasmbin.FuncType{
	// define(buf, len) -> handle or error
	"define": {Params: []byte{wasmbin.I32, wasmbin.I32}, Results: []byte{wasmbin.I32}},
	// fire(handle, args, len) -> result
	"fire": {Params: []byte{wasmbin.I32, wasmbin.I32, wasmbin.I32}, Results: []byte{wasmbin.I32}},
	// enabled(handle) -> 0 or 1, or error
	"enabled": {Params: []byte{wasmbin.I32}, Results: []byte{wasmbin.I32}},
}

// Exports a module may offer to the host in ABI v1.
const (
	// ExportAlloc is tracemark_alloc(size i32) -> ptr i32: a buffer of at
	// least size bytes that the host fills with a call's input. Needed to
	// call hooks with a non-empty input.
	ExportAlloc = "tracemark_alloc"
	// ExportFlags is tracemark_flags() -> i64, an optional extension of
	// ABI v1: the module's array of enabled flags, packed as ptr<<32 |
	// len. The host calls it once, after ExportInitialize, and from then
	// on keeps byte h of the array (for each marker handle 1 <= h < len)
	// at 1 while marker h has probes and is not refused, and at 0
	// otherwise, so that a module can skip the fire call of a disabled
	// marker with one load and a branch. The host writes the flags only
	// while the module is suspended in a call to the host or between
	// calls: a probe connected during a call is seen at the module's next
	// host call or the next call into it. The flags are advice: the host
	// still checks every fire, so a module that ignores or overwrites
	// them loses its own events at worst. Bytes 0 and len and beyond are
	// the module's. A module without this export works as before.
	ExportFlags = "tracemark_flags"
	// ExportEvents is tracemark_events() -> i64, an optional extension of
	// ABI v1: the module's event buffer, packed as ptr<<32 | len (at most
	// MaxEventBufferBytes). The host calls it once, after ExportFlags, and
	// from then on the module may append events to the buffer instead of
	// calling fire for each: a u32le count of record bytes, a u32le count
	// of records, then the records, each u32le handle, u32le n and an
	// argument buffer of n bytes as fire takes it. The host delivers the
	// records, in order, and empties the buffer (both header words to 0)
	// when the module calls fire(0, 0, 0) (its buffer is full) and after
	// every call into the module returns. Each record is checked as a
	// fire call is; a record or header that is not valid is an ABI
	// violation and the records it makes unreadable are counted as
	// dropped. A module without this export works as before.
	ExportEvents = "tracemark_events"
	// ExportInitialize is the reactor initializer of WASI modules (Go's
	// c-shared build mode), called once when the module is loaded.
	ExportInitialize = "_initialize"
)

// HookType is the signature of a hook the host calls with bytes:
// hook(ptr i32, len i32) -> i64, the result packing the output as
// ptr<<32 | len (0 for none).
var HookType = wasmbin.FuncType{Params: []byte{wasmbin.I32, wasmbin.I32}, Results: []byte{wasmbin.I64}}

// ErrABIMismatch is wrapped by errors about a module that was not built for
// ABI v1: no or another ABI version in its metadata, or imports the host
// does not offer. Such a module is refused unless force-loaded (taint F).
var ErrABIMismatch = errors.New("ABI mismatch")

// Import is one function a module imports, for display and checks.
type Import struct {
	Module string `json:"module"`
	Name   string `json:"name"`
	// Kind is "func", "table", "memory", "global" or "tag".
	Kind string `json:"kind"`
	// Type is a function's signature, such as "(i32, i32) -> (i32)".
	Type string `json:"type,omitempty"`
	// Problem says why the host cannot provide it ("" if it can).
	Problem string `json:"problem,omitempty"`

	sig wasmbin.FuncType
}

// Signature returns a function import's parameter and result types as
// WebAssembly value type codes (0x7f i32, 0x7e i64, 0x7d f32, 0x7c f64).
func (i Import) Signature() (params, results []byte) {
	return i.sig.Params, i.sig.Results
}

// checkImports returns the module's imports, each with the problem that
// makes it unavailable, and an ErrABIMismatch error if there is one.
func checkImports(types []wasmbin.FuncType, imports []wasmbin.Import) ([]Import, error) {
	var out []Import
	var problems []string
	for _, im := range imports {
		i := Import{Module: im.Module, Name: im.Name, Kind: [...]string{"func", "table", "memory", "global", "tag"}[min(int(im.Kind), 4)]}
		var t wasmbin.FuncType
		if im.Kind == wasmbin.KindFunc {
			if int(im.Type) >= len(types) {
				i.Type = "?"
				i.Problem = fmt.Sprintf("type index %d out of range", im.Type)
			} else {
				t = types[im.Type]
				i.Type = t.String()
				i.sig = t
			}
		}
		switch {
		case i.Problem != "":
		case im.Module == ABINamespace:
			want, ok := HostFunctions[im.Name]
			switch {
			case im.Kind != wasmbin.KindFunc:
				i.Problem = "not a function"
			case !ok:
				i.Problem = "not a function of ABI v1"
			case !want.Equal(t):
				i.Problem = "ABI v1 type is " + want.String()
			}
		case im.Module == WASINamespace:
			if im.Kind != wasmbin.KindFunc {
				i.Problem = "not a function"
			}
		default:
			i.Problem = "unknown ABI namespace"
		}
		if i.Problem != "" {
			problems = append(problems, fmt.Sprintf("%s.%s: %s", i.Module, i.Name, i.Problem))
		}
		out = append(out, i)
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return out, fmt.Errorf("%w: %s", ErrABIMismatch, strings.Join(problems, "; "))
	}
	return out, nil
}
