package wire

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
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

// Request limits. The agent enforces them on every request; the fuzz
// target checks that nothing beyond them is ever accepted.
const (
	// MaxRequestBytes bounds a request body.
	MaxRequestBytes = 64 << 10
	// MaxRules bounds the rules of one request.
	MaxRules = 64
	// MaxPatternLen bounds a marker glob.
	MaxPatternLen = 256
	// MaxFilterLen bounds a filter expression.
	MaxFilterLen = 4096
	// MaxNameLen bounds session names and client labels.
	MaxNameLen = 64
	// MinBuffer and MaxBuffer bound a session's buffer size per shard.
	MinBuffer = 16 << 10
	MaxBuffer = 64 << 20
	// DefaultBuffer is the buffer size per shard when none is given: with
	// the reader woken as sub-buffers fill, 4 MiB holds about 8 ms of
	// events of one goroutine firing a small event flat out (500 MB/s),
	// enough to ride out the reader's scheduling delays on a busy
	// machine.
	DefaultBuffer = 4 << 20
	// MinSubBuffer and MaxSubBuffer bound a recording's sub-buffer
	// (packet) size, a power of two; a buffer holds at least two.
	MinSubBuffer = 4 << 10
	MaxSubBuffer = 2 << 20
	// MaxDuration bounds a recording's duration.
	MaxDuration = 24 * time.Hour
	// MinInterval and MaxInterval bound flush and stats intervals.
	MinInterval = 10 * time.Millisecond
	MaxInterval = time.Hour
	// DefaultFlushInterval and DefaultStatsInterval are the intervals of
	// a recording when none are given.
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultStatsInterval = time.Second
)

// RecordSpec is a validated RecordRequest.
type RecordSpec struct {
	Rules      []Rule
	Mode       session.Mode
	Buffer     int
	SubBuffer  int           // 0: the session's default
	Duration   time.Duration // 0: until stopped
	Flush      time.Duration
	StatsEvery time.Duration
	Client     string
	GoTrace    bool
}

// EnableSpec is a validated EnableRequest.
type EnableSpec struct {
	Rules []Rule
	// ModeSet and BufferSet say whether the request gave them.
	Mode      session.Mode
	ModeSet   bool
	Buffer    int
	BufferSet bool
	// Trigger is the validated trigger, or nil.
	Trigger *TriggerSpec
}

// TriggerSpec is a validated TriggerRequest.
type TriggerSpec struct {
	On      string
	Dir     string
	Every   time.Duration
	GoTrace bool
}

// Trigger limits.
const (
	DefaultTriggerEvery = 10 * time.Second
	MinTriggerEvery     = 100 * time.Millisecond
)

func checkTrigger(req *TriggerRequest) (*TriggerSpec, error) {
	if req == nil {
		return nil, nil
	}
	if err := checkPattern(req.On); err != nil {
		return nil, err
	}
	if req.Dir == "" || !filepath.IsAbs(req.Dir) || len(req.Dir) > 4096 || strings.ContainsRune(req.Dir, 0) {
		return nil, Errorf(CodeInvalid, "trigger.dir: %q must be an absolute path", req.Dir)
	}
	spec := &TriggerSpec{On: req.On, Dir: filepath.Clean(req.Dir), Every: DefaultTriggerEvery, GoTrace: req.GoTrace}
	if req.Every != "" {
		d, err := time.ParseDuration(req.Every)
		if err != nil || d < MinTriggerEvery {
			return nil, Errorf(CodeInvalid, "trigger.every: %q must be a duration of at least %v", req.Every, MinTriggerEvery)
		}
		spec.Every = d
	}
	return spec, nil
}

// ParseRecordRequest decodes and validates the body of POST /v1/record.
// Errors are *Error values with a code for the client.
func ParseRecordRequest(body []byte) (RecordSpec, error) {
	var req RecordRequest
	if err := decodeStrict(body, &req); err != nil {
		return RecordSpec{}, err
	}
	spec := RecordSpec{Buffer: DefaultBuffer, Flush: DefaultFlushInterval, StatsEvery: DefaultStatsInterval}
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
	if spec.Duration, err = parseDuration("duration", req.Duration, 0, MaxDuration, 0); err != nil {
		return RecordSpec{}, err
	}
	if spec.Flush, err = parseDuration("flush_interval", req.FlushInterval, MinInterval, MaxInterval, DefaultFlushInterval); err != nil {
		return RecordSpec{}, err
	}
	if spec.StatsEvery, err = parseDuration("stats_interval", req.StatsInterval, MinInterval, MaxInterval, DefaultStatsInterval); err != nil {
		return RecordSpec{}, err
	}
	if err := checkLabel("client", req.Client); err != nil {
		return RecordSpec{}, err
	}
	spec.Client = req.Client
	spec.GoTrace = req.GoTrace
	return spec, nil
}

// ParseEnableRequest decodes and validates the body of
// POST /v1/sessions/{name}/enable.
func ParseEnableRequest(body []byte) (EnableSpec, error) {
	var req EnableRequest
	if err := decodeStrict(body, &req); err != nil {
		return EnableSpec{}, err
	}
	spec := EnableSpec{Buffer: DefaultBuffer}
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
	return spec, nil
}

// ParseDisableRequest decodes and validates the body of
// POST /v1/sessions/{name}/disable and returns its patterns.
func ParseDisableRequest(body []byte) ([]string, error) {
	var req DisableRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	if len(req.Patterns) == 0 {
		return nil, Errorf(CodeInvalid, "patterns: at least one pattern is required (DELETE the session to remove it)")
	}
	if len(req.Patterns) > MaxRules {
		return nil, Errorf(CodeInvalid, "patterns: %d patterns, at most %d", len(req.Patterns), MaxRules)
	}
	for _, p := range req.Patterns {
		if err := checkPattern(p); err != nil {
			return nil, err
		}
	}
	return req.Patterns, nil
}

// CheckSessionName validates a session name from a path: 1 to MaxNameLen
// characters among letters, digits, '-', '_' and '.', not starting with a
// dot.
func CheckSessionName(name string) error {
	if name == "" || len(name) > MaxNameLen || name[0] == '.' {
		return Errorf(CodeInvalid, "session name %q: want 1 to %d letters, digits, '-', '_' or '.', not starting with '.'", Clip(name), MaxNameLen)
	}
	for _, c := range []byte(name) {
		if !nameByte(c) {
			return Errorf(CodeInvalid, "session name %q: want 1 to %d letters, digits, '-', '_' or '.', not starting with '.'", Clip(name), MaxNameLen)
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// decodeStrict decodes exactly one JSON object into v, refusing unknown
// fields and trailing data.
func decodeStrict(body []byte, v any) error {
	if len(body) > MaxRequestBytes {
		return Errorf(CodeTooLarge, "request body of %d bytes exceeds %d", len(body), MaxRequestBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Errorf(CodeBadRequest, "empty request body: want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// encoding/json has no typed error for unknown fields.
		if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
			return Errorf(CodeUnknownField, "%s", strings.TrimPrefix(msg, "json: "))
		}
		return Errorf(CodeBadRequest, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		return Errorf(CodeBadRequest, "malformed JSON: data after the request object")
	}
	return nil
}

func checkRules(rules []Rule) ([]Rule, error) {
	if len(rules) == 0 {
		return nil, Errorf(CodeInvalid, "rules: at least one rule is required")
	}
	if len(rules) > MaxRules {
		return nil, Errorf(CodeInvalid, "rules: %d rules, at most %d", len(rules), MaxRules)
	}
	out := make([]Rule, len(rules))
	for i, r := range rules {
		if err := checkPattern(r.Pattern); err != nil {
			return nil, err
		}
		if len(r.Filter) > MaxFilterLen {
			return nil, Errorf(CodeBadFilter, "filter of %d bytes exceeds %d", len(r.Filter), MaxFilterLen)
		}
		if !utf8.ValidString(r.Filter) {
			return nil, Errorf(CodeBadFilter, "filter is not valid UTF-8")
		}
		if err := checkChecked(r); err != nil {
			return nil, err
		}
		out[i] = Rule{Pattern: r.Pattern, Filter: strings.TrimSpace(r.Filter)}
		if !isNull(r.Checked) {
			out[i].Checked = r.Checked
		}
	}
	return out, nil
}

func checkPattern(p string) error {
	if len(p) > MaxPatternLen {
		return Errorf(CodeBadPattern, "pattern of %d bytes exceeds %d", len(p), MaxPatternLen)
	}
	if err := marker.CheckPattern(p); err != nil {
		return Errorf(CodeBadPattern, "%v", err)
	}
	for _, c := range []byte(p) {
		// Marker names are ASCII; anything else cannot match and is
		// most likely a mistake worth reporting.
		if c < 0x20 || c >= 0x7f {
			return Errorf(CodeBadPattern, "pattern %q: marker names are printable ASCII", Clip(p))
		}
	}
	return nil
}

func checkLabel(what, s string) error {
	if len(s) > MaxNameLen || !utf8.ValidString(s) {
		return Errorf(CodeInvalid, "%s: want at most %d bytes of UTF-8", what, MaxNameLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return Errorf(CodeInvalid, "%s: control characters are not allowed", what)
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
		return 0, false, Errorf(CodeInvalid, "mode: %v", err)
	}
	return m, true, nil
}

func parseBuffer(s string) (int, error) {
	if len(s) > 32 {
		return 0, Errorf(CodeInvalid, "buffer: %q is not a size", Clip(s))
	}
	n, err := bytesize.Parse(s)
	if err != nil {
		return 0, Errorf(CodeInvalid, "buffer: %v", err)
	}
	if n < MinBuffer || n > MaxBuffer {
		return 0, Errorf(CodeInvalid, "buffer: %d bytes not in [%d, %d]", n, MinBuffer, MaxBuffer)
	}
	return n, nil
}

func parseSubBuffer(s string, buffer int) (int, error) {
	if len(s) > 32 {
		return 0, Errorf(CodeInvalid, "sub_buffer: %q is not a size", Clip(s))
	}
	n, err := bytesize.Parse(s)
	if err != nil {
		return 0, Errorf(CodeInvalid, "sub_buffer: %v", err)
	}
	if n < MinSubBuffer || n > MaxSubBuffer || n&(n-1) != 0 {
		return 0, Errorf(CodeInvalid, "sub_buffer: %d bytes is not a power of two in [%d, %d]", n, MinSubBuffer, MaxSubBuffer)
	}
	if n > buffer/2 {
		return 0, Errorf(CodeInvalid, "sub_buffer: %d bytes is more than half the %d-byte buffer (it needs at least two)", n, buffer)
	}
	return n, nil
}

// parseDuration parses a Go duration within [lo, hi]; "" gives def.
func parseDuration(what, s string, lo, hi, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	if len(s) > 32 {
		return 0, Errorf(CodeInvalid, "%s: %q is not a duration", what, Clip(s))
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, Errorf(CodeInvalid, "%s: %q is not a duration such as 500ms or 30s", what, Clip(s))
	}
	if d < lo || d > hi {
		return 0, Errorf(CodeInvalid, "%s: %v not in [%v, %v]", what, d, lo, hi)
	}
	return d, nil
}

// Clip shortens user input quoted in error messages.
func Clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
