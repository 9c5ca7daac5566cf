package wire

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tracemark/tracemark/module"
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

// InsmodSpec is a validated InsmodRequest.
type InsmodSpec struct {
	Path   string
	Force  bool
	Policy module.Policy // PolicyDefault: the process's
}

// ParseInsmodRequest decodes and validates the body of POST /v1/modules.
// Errors are *Error values with a code for the client.
func ParseInsmodRequest(body []byte) (InsmodSpec, error) {
	var req InsmodRequest
	if err := decodeStrict(body, &req); err != nil {
		return InsmodSpec{}, err
	}
	switch {
	case req.Path == "":
		return InsmodSpec{}, Errorf(CodeInvalid, "path: the module file is required")
	case len(req.Path) > MaxPathLen:
		return InsmodSpec{}, Errorf(CodeInvalid, "path: %d bytes, at most %d", len(req.Path), MaxPathLen)
	case !utf8.ValidString(req.Path) || strings.ContainsFunc(req.Path, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return InsmodSpec{}, Errorf(CodeInvalid, "path: want UTF-8 without control characters")
	case !filepath.IsAbs(req.Path):
		return InsmodSpec{}, Errorf(CodeInvalid, "path %q: want an absolute path (the process's working directory is not the client's)", Clip(req.Path))
	}
	spec := InsmodSpec{Path: filepath.Clean(req.Path), Force: req.Force}
	if req.Policy != "" {
		if len(req.Policy) > 32 {
			return InsmodSpec{}, Errorf(CodeInvalid, "policy: %q is not a policy", Clip(req.Policy))
		}
		p, err := module.ParsePolicy(req.Policy)
		if err != nil || p == module.PolicyDefault {
			return InsmodSpec{}, Errorf(CodeInvalid, "policy: %q: want strict, kernel, proprietary or open", Clip(req.Policy))
		}
		spec.Policy = p
	}
	return spec, nil
}

// CheckModuleName validates a module name from a path:
// [a-z][a-z0-9_]*, at most MaxModuleNameLen bytes.
func CheckModuleName(name string) error {
	ok := name != "" && len(name) <= MaxModuleNameLen && name[0] >= 'a' && name[0] <= 'z'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
	}
	if !ok {
		return Errorf(CodeInvalid, "module name %q: want [a-z][a-z0-9_]*, at most %d bytes", Clip(name), MaxModuleNameLen)
	}
	return nil
}

// ParseForce parses the force query parameter of DELETE
// /v1/modules/{name}: absent, "0", "false", "1" or "true".
func ParseForce(s string) (bool, error) {
	switch s {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, Errorf(CodeInvalid, "force=%q: want 1, true, 0 or false", Clip(s))
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

// Modules returns GET /v1/modules.
func (c *Client) Modules(ctx context.Context) (*ModuleList, error) {
	var out ModuleList
	return &out, c.do(ctx, http.MethodGet, "/modules", nil, &out)
}

// Insmod calls POST /v1/modules and returns the loaded module.
func (c *Client) Insmod(ctx context.Context, req InsmodRequest) (*ModuleInfo, error) {
	var out ModuleInfo
	return &out, c.do(ctx, http.MethodPost, "/modules", req, &out)
}

// Rmmod calls DELETE /v1/modules/{name}[?force=1] and returns the module
// as it was unloaded.
func (c *Client) Rmmod(ctx context.Context, name string, force bool) (*ModuleInfo, error) {
	path := "/modules/" + url.PathEscape(name)
	if force {
		path += "?force=1"
	}
	var out ModuleInfo
	return &out, c.do(ctx, http.MethodDelete, path, nil, &out)
}

// Taint returns GET /v1/taint.
func (c *Client) Taint(ctx context.Context) (*TaintReport, error) {
	var out TaintReport
	return &out, c.do(ctx, http.MethodGet, "/taint", nil, &out)
}
