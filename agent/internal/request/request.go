// Package request decodes and validates the agent's requests: the JSON
// bodies of the endpoints that take one (see package wire for the
// protocol) and the names and parameters in their paths. Everything a
// client sends is checked here, against the limits wire documents,
// before anything happens in the process; errors are *wire.Error values
// with a code for the client.
//
// It lives beside the agent, not in wire, because validation needs the
// recorder's packages (marker globs, session modes, module policies):
// the protocol package itself depends on none of them.
package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tracemark/tracemark/internal/bytesize"
	"github.com/tracemark/tracemark/internal/evctx"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/module"
	"github.com/tracemark/tracemark/session"
)

// RecordSpec is a validated RecordRequest.
type RecordSpec struct {
	Rules      []wire.Rule
	Mode       session.Mode
	Buffer     int
	SubBuffer  int           // 0: the session's default
	Duration   time.Duration // 0: until stopped
	Flush      time.Duration
	StatsEvery time.Duration
	Client     string
	GoTrace    bool
	// Context: the session's context fields (session.WithEventContext).
	Context []session.ContextField
}

// EnableSpec is a validated EnableRequest.
type EnableSpec struct {
	Rules []wire.Rule
	// ModeSet and BufferSet say whether the request gave them.
	Mode      session.Mode
	ModeSet   bool
	Buffer    int
	BufferSet bool
	// Trigger is the validated trigger, or nil.
	Trigger *TriggerSpec
	// Context: the session's context fields (session.WithEventContext);
	// nil leaves an existing session's as they are.
	Context []session.ContextField
}

// TriggerSpec is a validated TriggerRequest.
type TriggerSpec struct {
	On      string
	Dir     string
	Every   time.Duration
	GoTrace bool
}

func checkTrigger(req *wire.TriggerRequest) (*TriggerSpec, error) {
	if req == nil {
		return nil, nil
	}
	if err := checkPattern(req.On); err != nil {
		return nil, err
	}
	if req.Dir == "" || !filepath.IsAbs(req.Dir) || len(req.Dir) > 4096 || strings.ContainsRune(req.Dir, 0) {
		return nil, wire.Errorf(wire.CodeInvalid, "trigger.dir: %q must be an absolute path", req.Dir)
	}
	spec := &TriggerSpec{On: req.On, Dir: filepath.Clean(req.Dir), Every: wire.DefaultTriggerEvery, GoTrace: req.GoTrace}
	if req.Every != "" {
		d, err := time.ParseDuration(req.Every)
		if err != nil || d < wire.MinTriggerEvery {
			return nil, wire.Errorf(wire.CodeInvalid, "trigger.every: %q must be a duration of at least %v", req.Every, wire.MinTriggerEvery)
		}
		spec.Every = d
	}
	return spec, nil
}

// ParseRecord decodes and validates the body of POST /v1/record.
// Errors are *Error values with a code for the client.
func ParseRecord(body []byte) (RecordSpec, error) {
	var req wire.RecordRequest
	if err := decodeStrict(body, &req); err != nil {
		return RecordSpec{}, err
	}
	spec := RecordSpec{Buffer: wire.DefaultBuffer, Flush: wire.DefaultFlushInterval, StatsEvery: wire.DefaultStatsInterval}
	var err error
	if spec.Rules, err = checkRules(req.Rules); err != nil {
		return RecordSpec{}, err
	}
	if spec.Mode, _, err = parseMode(req.Mode); err != nil {
		return RecordSpec{}, err
	}
	if req.Buffer != "" {
		if spec.Buffer, err = parseBuffer(req.Buffer); err != nil {
			return RecordSpec{}, err
		}
	}
	if req.SubBuffer != "" {
		if spec.SubBuffer, err = parseSubBuffer(req.SubBuffer, spec.Buffer); err != nil {
			return RecordSpec{}, err
		}
	}
	if spec.Duration, err = parseDuration("duration", req.Duration, 0, wire.MaxDuration, 0); err != nil {
		return RecordSpec{}, err
	}
	if spec.Flush, err = parseDuration("flush_interval", req.FlushInterval, wire.MinInterval, wire.MaxInterval, wire.DefaultFlushInterval); err != nil {
		return RecordSpec{}, err
	}
	if spec.StatsEvery, err = parseDuration("stats_interval", req.StatsInterval, wire.MinInterval, wire.MaxInterval, wire.DefaultStatsInterval); err != nil {
		return RecordSpec{}, err
	}
	if err := checkLabel("client", req.Client); err != nil {
		return RecordSpec{}, err
	}
	spec.Client = req.Client
	spec.GoTrace = req.GoTrace
	if spec.Context, err = checkContext(req.Context); err != nil {
		return RecordSpec{}, err
	}
	return spec, nil
}

// checkContext validates the context fields of a request.
func checkContext(names []string) ([]session.ContextField, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if _, err := evctx.Fields(names); err != nil {
		return nil, wire.Errorf(wire.CodeInvalid, "context: %v", err)
	}
	out := make([]session.ContextField, len(names))
	for i, n := range names {
		out[i] = session.ContextField(n)
	}
	return out, nil
}

// ParseEnable decodes and validates the body of
// POST /v1/sessions/{name}/enable.
func ParseEnable(body []byte) (EnableSpec, error) {
	var req wire.EnableRequest
	if err := decodeStrict(body, &req); err != nil {
		return EnableSpec{}, err
	}
	spec := EnableSpec{Buffer: wire.DefaultBuffer}
	var err error
	if spec.Rules, err = checkRules(req.Rules); err != nil {
		return EnableSpec{}, err
	}
	if spec.Mode, spec.ModeSet, err = parseMode(req.Mode); err != nil {
		return EnableSpec{}, err
	}
	if req.Buffer != "" {
		if spec.Buffer, err = parseBuffer(req.Buffer); err != nil {
			return EnableSpec{}, err
		}
		spec.BufferSet = true
	}
	if spec.Trigger, err = checkTrigger(req.Trigger); err != nil {
		return EnableSpec{}, err
	}
	if spec.Context, err = checkContext(req.Context); err != nil {
		return EnableSpec{}, err
	}
	return spec, nil
}

// ParseDisable decodes and validates the body of
// POST /v1/sessions/{name}/disable and returns its patterns.
func ParseDisable(body []byte) ([]string, error) {
	var req wire.DisableRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	if len(req.Patterns) == 0 {
		return nil, wire.Errorf(wire.CodeInvalid, "patterns: at least one pattern is required (DELETE the session to remove it)")
	}
	if len(req.Patterns) > wire.MaxRules {
		return nil, wire.Errorf(wire.CodeInvalid, "patterns: %d patterns, at most %d", len(req.Patterns), wire.MaxRules)
	}
	for _, p := range req.Patterns {
		if err := checkPattern(p); err != nil {
			return nil, err
		}
	}
	return req.Patterns, nil
}

// decodeStrict decodes exactly one JSON object into v, refusing unknown
// fields and trailing data.
func decodeStrict(body []byte, v any) error {
	if len(body) > wire.MaxRequestBytes {
		return wire.Errorf(wire.CodeTooLarge, "request body of %d bytes exceeds %d", len(body), wire.MaxRequestBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return wire.Errorf(wire.CodeBadRequest, "empty request body: want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// encoding/json has no typed error for unknown fields.
		if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
			return wire.Errorf(wire.CodeUnknownField, "%s", strings.TrimPrefix(msg, "json: "))
		}
		return wire.Errorf(wire.CodeBadRequest, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		return wire.Errorf(wire.CodeBadRequest, "malformed JSON: data after the request object")
	}
	return nil
}

func checkRules(rules []wire.Rule) ([]wire.Rule, error) {
	if len(rules) == 0 {
		return nil, wire.Errorf(wire.CodeInvalid, "rules: at least one rule is required")
	}
	if len(rules) > wire.MaxRules {
		return nil, wire.Errorf(wire.CodeInvalid, "rules: %d rules, at most %d", len(rules), wire.MaxRules)
	}
	out := make([]wire.Rule, len(rules))
	for i, r := range rules {
		if err := checkPattern(r.Pattern); err != nil {
			return nil, err
		}
		if len(r.Filter) > wire.MaxFilterLen {
			return nil, wire.Errorf(wire.CodeBadFilter, "filter of %d bytes exceeds %d", len(r.Filter), wire.MaxFilterLen)
		}
		if !utf8.ValidString(r.Filter) {
			return nil, wire.Errorf(wire.CodeBadFilter, "filter is not valid UTF-8")
		}
		if err := checkChecked(r); err != nil {
			return nil, err
		}
		out[i] = wire.Rule{Pattern: r.Pattern, Filter: strings.TrimSpace(r.Filter)}
		if !isNull(r.Checked) {
			out[i].Checked = r.Checked
		}
	}
	return out, nil
}

func checkPattern(p string) error {
	if len(p) > wire.MaxPatternLen {
		return wire.Errorf(wire.CodeBadPattern, "pattern of %d bytes exceeds %d", len(p), wire.MaxPatternLen)
	}
	if err := marker.CheckPattern(p); err != nil {
		return wire.Errorf(wire.CodeBadPattern, "%v", err)
	}
	for _, c := range []byte(p) {
		// Marker names are ASCII; anything else cannot match and is
		// most likely a mistake worth reporting.
		if c < 0x20 || c >= 0x7f {
			return wire.Errorf(wire.CodeBadPattern, "pattern %q: marker names are printable ASCII", wire.Clip(p))
		}
	}
	return nil
}

func checkLabel(what, s string) error {
	if len(s) > wire.MaxNameLen || !utf8.ValidString(s) {
		return wire.Errorf(wire.CodeInvalid, "%s: want at most %d bytes of UTF-8", what, wire.MaxNameLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return wire.Errorf(wire.CodeInvalid, "%s: control characters are not allowed", what)
		}
	}
	return nil
}

func parseMode(s string) (session.Mode, bool, error) {
	if s == "" {
		return session.Discard, false, nil
	}
	m, err := session.ParseMode(s)
	if err != nil {
		return 0, false, wire.Errorf(wire.CodeInvalid, "mode: %v", err)
	}
	return m, true, nil
}

func parseBuffer(s string) (int, error) {
	if len(s) > 32 {
		return 0, wire.Errorf(wire.CodeInvalid, "buffer: %q is not a size", wire.Clip(s))
	}
	n, err := bytesize.Parse(s)
	if err != nil {
		return 0, wire.Errorf(wire.CodeInvalid, "buffer: %v", err)
	}
	if n < wire.MinBuffer || n > wire.MaxBuffer {
		return 0, wire.Errorf(wire.CodeInvalid, "buffer: %d bytes not in [%d, %d]", n, wire.MinBuffer, wire.MaxBuffer)
	}
	return n, nil
}

func parseSubBuffer(s string, buffer int) (int, error) {
	if len(s) > 32 {
		return 0, wire.Errorf(wire.CodeInvalid, "sub_buffer: %q is not a size", wire.Clip(s))
	}
	n, err := bytesize.Parse(s)
	if err != nil {
		return 0, wire.Errorf(wire.CodeInvalid, "sub_buffer: %v", err)
	}
	if n < wire.MinSubBuffer || n > wire.MaxSubBuffer || n&(n-1) != 0 {
		return 0, wire.Errorf(wire.CodeInvalid, "sub_buffer: %d bytes is not a power of two in [%d, %d]", n, wire.MinSubBuffer, wire.MaxSubBuffer)
	}
	if n > buffer/2 {
		return 0, wire.Errorf(wire.CodeInvalid, "sub_buffer: %d bytes is more than half the %d-byte buffer (it needs at least two)", n, buffer)
	}
	return n, nil
}

// parseDuration parses a Go duration within [lo, hi]; "" gives def.
func parseDuration(what, s string, lo, hi, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	if len(s) > 32 {
		return 0, wire.Errorf(wire.CodeInvalid, "%s: %q is not a duration", what, wire.Clip(s))
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, wire.Errorf(wire.CodeInvalid, "%s: %q is not a duration such as 500ms or 30s", what, wire.Clip(s))
	}
	if d < lo || d > hi {
		return 0, wire.Errorf(wire.CodeInvalid, "%s: %v not in [%v, %v]", what, d, lo, hi)
	}
	return d, nil
}

// InsmodSpec is a validated InsmodRequest.
type InsmodSpec struct {
	Path   string
	Force  bool
	Policy module.Policy // PolicyDefault: the process's
}

// ParseInsmod decodes and validates the body of POST /v1/modules.
// Errors are *Error values with a code for the client.
func ParseInsmod(body []byte) (InsmodSpec, error) {
	var req wire.InsmodRequest
	if err := decodeStrict(body, &req); err != nil {
		return InsmodSpec{}, err
	}
	switch {
	case req.Path == "":
		return InsmodSpec{}, wire.Errorf(wire.CodeInvalid, "path: the module file is required")
	case len(req.Path) > wire.MaxPathLen:
		return InsmodSpec{}, wire.Errorf(wire.CodeInvalid, "path: %d bytes, at most %d", len(req.Path), wire.MaxPathLen)
	case !utf8.ValidString(req.Path) || strings.ContainsFunc(req.Path, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return InsmodSpec{}, wire.Errorf(wire.CodeInvalid, "path: want UTF-8 without control characters")
	case !filepath.IsAbs(req.Path):
		return InsmodSpec{}, wire.Errorf(wire.CodeInvalid, "path %q: want an absolute path (the process's working directory is not the client's)", wire.Clip(req.Path))
	}
	spec := InsmodSpec{Path: filepath.Clean(req.Path), Force: req.Force}
	if req.Policy != "" {
		if len(req.Policy) > 32 {
			return InsmodSpec{}, wire.Errorf(wire.CodeInvalid, "policy: %q is not a policy", wire.Clip(req.Policy))
		}
		p, err := module.ParsePolicy(req.Policy)
		if err != nil || p == module.PolicyDefault {
			return InsmodSpec{}, wire.Errorf(wire.CodeInvalid, "policy: %q: want strict, kernel, proprietary or open", wire.Clip(req.Policy))
		}
		spec.Policy = p
	}
	return spec, nil
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
	return false, wire.Errorf(wire.CodeInvalid, "force=%q: want 1, true, 0 or false", wire.Clip(s))
}
