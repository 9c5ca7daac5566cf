package wire

import (
	"time"

	"github.com/tracemark/tracemark/internal/ident"
)

// MaxPathLen bounds the module path of an InsmodRequest.
const MaxPathLen = 4096

// MaxModuleNameLen bounds a module name in a path (module names are
// [a-z][a-z0-9_]*, at most 64 bytes).
const MaxModuleNameLen = 64

// ModuleList is the answer of GET /v1/modules: what `tracemark lsmod`
// shows.
type ModuleList struct {
	// Loading says whether the process loads modules at run time: its
	// program opted in (agentmodules.WithHost). When false, Modules is empty
	// and insmod and rmmod answer "unavailable".
	Loading bool `json:"loading"`
	// Policy is the process-wide module policy ("" when not loading).
	Policy string `json:"policy,omitempty"`
	// Taint is the process taint in kernel letters ("" when clean): the
	// union of every module's flags, ever, sticky after unloading.
	Taint   string       `json:"taint"`
	Modules []ModuleInfo `json:"modules"`
}

// ModuleInfo describes a loaded module: an element of GET /v1/modules,
// and the answer of insmod and rmmod.
type ModuleInfo struct {
	Name          string `json:"name"`
	Version       string `json:"version,omitempty"`
	Description   string `json:"description,omitempty"`
	Author        string `json:"author,omitempty"`
	License       string `json:"license"`
	GPLCompatible bool   `json:"gpl_compatible"`
	// Signer describes the signature: "alice (ed25519:...)", "unsigned",
	// "unknown key ed25519:...", "bad signature: ...". SignatureState is
	// "unsigned", "trusted", "unknown-key" or "bad-signature".
	Signer         string `json:"signer"`
	SignatureState string `json:"signature_state"`
	Fingerprint    string `json:"fingerprint,omitempty"`
	// Path is the file the module was loaded from.
	Path string `json:"path,omitempty"`
	// Forced says why the ABI check failed, for a force-loaded module.
	Forced string `json:"forced,omitempty"`
	// Taint is the module's taint in kernel letters ("" when clean).
	Taint string `json:"taint"`
	// State is "live" (its markers are used), "refused" (loaded and
	// callable, but policy refuses its markers), "dead" (it trapped or
	// overran a deadline) or "unloaded" (in the answer of rmmod).
	State string `json:"state"`
	// Policy is the policy that applies to the module.
	Policy string `json:"policy"`
	// Refused says why its markers are refused ("" if they are used).
	Refused string         `json:"refused,omitempty"`
	Markers []ModuleMarker `json:"markers"`
	// Hooks are the exports the host can call.
	Hooks    []string       `json:"hooks,omitempty"`
	Counters ModuleCounters `json:"counters"`
	// MemoryPages is the module's memory in 64 KiB pages, MaxMemoryPages
	// its cap.
	MemoryPages    uint32    `json:"memory_pages"`
	MaxMemoryPages uint32    `json:"max_memory_pages"`
	LastError      string    `json:"last_error,omitempty"`
	Loaded         time.Time `json:"loaded"`
}

// ModuleMarker is a marker a module defined.
type ModuleMarker struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	Probes int    `json:"probes"`
	// Refused says why its events are not delivered, or is empty.
	Refused string `json:"refused,omitempty"`
}

// ModuleCounters count a module's calls and events.
type ModuleCounters struct {
	// Calls counts calls into the module by the host.
	Calls uint64 `json:"calls"`
	// Fired counts valid fire calls, with or without probes.
	Fired uint64 `json:"fired"`
	// Delivered counts events delivered to probes.
	Delivered uint64 `json:"delivered"`
	// Dropped counts events over the module's budget.
	Dropped uint64 `json:"dropped"`
	// Errors counts failed calls and ABI violations.
	Errors uint64 `json:"errors"`
}

// InsmodRequest is the body of POST /v1/modules: load a module file into
// the process.
type InsmodRequest struct {
	// Path is the absolute path of the .wasm file, which the process
	// reads itself (clients make relative paths absolute).
	Path string `json:"path"`
	// Force loads a module that fails the ABI check, tainting it F.
	Force bool `json:"force,omitempty"`
	// Policy overrides the process's module policy for this module:
	// "strict", "kernel", "proprietary" or "open" (default: the
	// process's).
	Policy string `json:"policy,omitempty"`
}

// CheckModuleName validates a module name from a path:
// [a-z][a-z0-9_]*, at most MaxModuleNameLen bytes.
func CheckModuleName(name string) error {
	if len(name) > MaxModuleNameLen || !ident.Valid(name) {
		return Errorf(CodeInvalid, "module name %q: want %s, at most %d bytes", Clip(name), ident.Pattern, MaxModuleNameLen)
	}
	return nil
}

// TaintReport is the answer of GET /v1/taint: the process taint explained
// letter by letter, and the taint of each loaded module (what `tracemark
// taint` shows).
type TaintReport struct {
	// Taint is the process taint in kernel letters ("" when clean).
	// It is sticky: unloading a module does not clear it.
	Taint string `json:"taint"`
	// Flags explains each letter of Taint, in kernel order.
	Flags []TaintFlag `json:"flags"`
	// Loading says whether the process loads modules at run time.
	Loading bool `json:"loading"`
	// Modules are the loaded modules with their own taint.
	Modules []ModuleTaint `json:"modules"`
}

// TaintFlag explains one taint letter.
type TaintFlag struct {
	Letter  string `json:"letter"`
	Meaning string `json:"meaning"`
	// Records say which module set the flag first, when and why, oldest
	// first (a module unloaded since is still named).
	Records []TaintRecord `json:"records,omitempty"`
}

// TaintRecord says when and why a module (or "" for the user or the
// host) tainted the process with a flag.
type TaintRecord struct {
	Module string    `json:"module,omitempty"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// ModuleTaint is the taint of one loaded module.
type ModuleTaint struct {
	Name  string `json:"name"`
	Taint string `json:"taint"`
	State string `json:"state"`
}
