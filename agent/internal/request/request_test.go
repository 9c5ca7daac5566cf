package request

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/module"
)

func TestParseRecordRequestErrors(t *testing.T) {
	tests := []struct {
		body, code string
	}{
		{`{"rules":[{"pattern":"a:*"}]`, wire.CodeBadRequest},
		{`{"rules":[{"pattern":"a:*"}]} []`, wire.CodeBadRequest},
		{`{"rules":"a:*"}`, wire.CodeBadRequest},
		{`{"rules":[{"pattern":"a:*"}],"buffr":"1M"}`, wire.CodeUnknownField},
		{`{"rules":[]}`, wire.CodeInvalid},
		{`{}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":""}]}`, wire.CodeBadPattern},
		{`{"rules":[{"pattern":"[a-"}]}`, wire.CodeBadPattern},
		{`{"rules":[{"pattern":"` + strings.Repeat("a", wire.MaxPatternLen+1) + `"}]}`, wire.CodeBadPattern},
		{`{"rules":[{"pattern":"a:*","filter":"` + strings.Repeat("x", wire.MaxFilterLen+1) + `"}]}`, wire.CodeBadFilter},
		{`{"rules":[{"pattern":"a:*"}],"mode":"sideways"}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":"a:*"}],"buffer":"1K"}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":"a:*"}],"buffer":"1T"}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":"a:*"}],"buffer":"18014398509482000K"}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":"a:*"}],"sub_buffer":"3K"}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":"a:*"}],"sub_buffer":"96K"}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":"a:*"}],"sub_buffer":"4M"}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":"a:*"}],"buffer":"64K","sub_buffer":"64K"}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":"a:*"}],"duration":"forever"}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":"a:*"}],"duration":"25h"}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":"a:*"}],"flush_interval":"1ms"}`, wire.CodeInvalid},
		{`{"rules":[{"pattern":"a:*"}],"client":"a\u001bb"}`, wire.CodeInvalid},
		{strings.Repeat(" ", wire.MaxRequestBytes+1), wire.CodeTooLarge},
	}
	for _, tt := range tests {
		_, err := ParseRecord([]byte(tt.body))
		if !wire.IsCode(err, tt.code) {
			t.Errorf("%.60s: %v, want code %s", tt.body, err, tt.code)
		}
	}
}

func TestParseRecordRequestDefaults(t *testing.T) {
	spec, err := ParseRecord([]byte(`{"rules":[{"pattern":"http:*","filter":" status >= 500 "}],"mode":"overwrite","buffer":"4MiB"}`))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Buffer != 4<<20 || spec.Mode.String() != "overwrite" || spec.Flush != wire.DefaultFlushInterval ||
		spec.StatsEvery != wire.DefaultStatsInterval || spec.Duration != 0 || spec.Rules[0].Filter != "status >= 500" {
		t.Errorf("spec = %+v", spec)
	}
	spec, err = ParseRecord([]byte(`{"rules":[{"pattern":"a:*"}],"sub_buffer":"1M"}`))
	if err != nil || spec.Buffer != wire.DefaultBuffer || spec.SubBuffer != 1<<20 {
		t.Errorf("spec = %+v, %v", spec, err)
	}
	// A null checked form is no form: fine without a filter.
	spec, err = ParseRecord([]byte(`{"rules":[{"pattern":"a:*","filter":"","checked":null}]}`))
	if err != nil || spec.Rules[0].Checked != nil {
		t.Errorf("a rule with a null checked form: %+v, %v", spec, err)
	}
	if _, err := ParseRecord([]byte(`{"rules":[{"pattern":"a:*","filter":"","checked":{"v":1}}]}`)); !wire.IsCode(err, wire.CodeBadFilter) {
		t.Errorf("a checked form without its source: %v, want bad_filter", err)
	}
}

func TestParseInsmodRequest(t *testing.T) {
	spec, err := ParseInsmod([]byte(`{"path":"/srv/../plugins//a.wasm","force":true,"policy":"kernel"}`))
	if err != nil || spec != (InsmodSpec{Path: "/plugins/a.wasm", Force: true, Policy: module.Kernel}) {
		t.Errorf("ParseInsmodRequest = %+v, %v", spec, err)
	}
	for body, code := range map[string]string{
		`{"path":"a.wasm"}`:                     wire.CodeInvalid,
		`{"path":""}`:                           wire.CodeInvalid,
		`{"path":"/a\nb"}`:                      wire.CodeInvalid,
		`{"path":"/a\u0000b"}`:                  wire.CodeInvalid,
		`{"path":"/a.wasm","policy":"default"}`: wire.CodeInvalid,
		`{"path":"/a.wasm","policy":"lenient"}`: wire.CodeInvalid,
		`{"path":"/a.wasm","name":"x"}`:         wire.CodeUnknownField,
		`{"path":"/a.wasm","force":"yes"}`:      wire.CodeBadRequest,
	} {
		if _, err := ParseInsmod([]byte(body)); !wire.IsCode(err, code) {
			t.Errorf("ParseInsmod(%s) = %v, want code %s", body, err, code)
		}
	}
	for _, name := range []string{"classifier", "a", "a_1"} {
		if err := wire.CheckModuleName(name); err != nil {
			t.Errorf("wire.CheckModuleName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "A", "1a", "a-b", "..", strings.Repeat("a", 65)} {
		if err := wire.CheckModuleName(name); !wire.IsCode(err, wire.CodeInvalid) {
			t.Errorf("wire.CheckModuleName(%q) = %v, want invalid_argument", name, err)
		}
	}
	for s, want := range map[string]bool{"": false, "0": false, "false": false, "1": true, "true": true} {
		if got, err := ParseForce(s); err != nil || got != want {
			t.Errorf("ParseForce(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseForce("yes"); !wire.IsCode(err, wire.CodeInvalid) {
		t.Errorf("ParseForce(yes) = %v", err)
	}
}

// FuzzParseRequest feeds arbitrary bodies to every request decoder. It
// checks that none panics, that what they accept is within the limits,
// and that an accepted request, encoded again, decodes to the same thing.
// The seed corpus (here and in testdata/fuzz) runs in every go test.
func FuzzParseRequest(f *testing.F) {
	seeds := []string{
		`{"rules":[{"pattern":"http:*","filter":"status >= 500"}],"mode":"overwrite","buffer":"4M","duration":"30s"}`,
		`{"rules":[{"pattern":"a:b"}],"flush_interval":"10ms","stats_interval":"1h","client":"tracemark record"}`,
		`{"rules":[{"pattern":"*"}],"buffer":"18014398509482000K"}`,
		`{"patterns":["http:*","db:query"]}`,
		`{"rules":[{"pattern":"[a-"}]}`,
		`{"rules":[],"mode":"sideways"}`,
		`{"rules":[{"pattern":"a:*"}]} {"again":1}`,
		`{"rules":[{"pattern":"a:*","unknown":true}]}`,
		`{"rules":[{"pattern":"a:*"}],"duration":"-1s"}`,
		`null`,
		``,
		`{"path":"/srv/plugins/classifier.wasm","force":true,"policy":"kernel"}`,
		`{"path":"/srv/../plugins//a.wasm"}`,
		`{"path":"classifier.wasm"}`,
		`{"path":"/a\u0000b.wasm"}`,
		`{"path":"/a.wasm","policy":"default"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if spec, err := ParseRecord(body); err == nil {
			checkRecordSpec(t, spec)
			again, err := ParseRecord(encodeRecordSpec(t, spec))
			if err != nil || !reflect.DeepEqual(again, spec) {
				t.Fatalf("round trip: %+v, %v; want %+v", again, err, spec)
			}
		} else {
			checkError(t, err)
		}
		if spec, err := ParseEnable(body); err == nil {
			checkAcceptedRules(t, spec.Rules)
			if spec.Buffer < wire.MinBuffer || spec.Buffer > wire.MaxBuffer {
				t.Fatalf("accepted buffer %d", spec.Buffer)
			}
		} else {
			checkError(t, err)
		}
		if ps, err := ParseDisable(body); err == nil {
			if len(ps) == 0 || len(ps) > wire.MaxRules {
				t.Fatalf("accepted %d patterns", len(ps))
			}
		} else {
			checkError(t, err)
		}
		if spec, err := ParseInsmod(body); err == nil {
			checkInsmodSpec(t, spec)
		} else {
			checkError(t, err)
		}
	})
}

func checkInsmodSpec(t *testing.T, spec InsmodSpec) {
	t.Helper()
	p := spec.Path
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || len(p) > wire.MaxPathLen || !utf8.ValidString(p) ||
		strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		t.Fatalf("accepted path %q", p)
	}
	if spec.Policy > module.Open {
		t.Fatalf("accepted policy %d", spec.Policy)
	}
}

func checkRecordSpec(t *testing.T, spec RecordSpec) {
	t.Helper()
	checkAcceptedRules(t, spec.Rules)
	switch {
	case spec.Buffer < wire.MinBuffer || spec.Buffer > wire.MaxBuffer:
		t.Fatalf("accepted buffer %d", spec.Buffer)
	case spec.Duration < 0 || spec.Duration > wire.MaxDuration:
		t.Fatalf("accepted duration %v", spec.Duration)
	case spec.Flush < wire.MinInterval || spec.Flush > wire.MaxInterval, spec.StatsEvery < wire.MinInterval || spec.StatsEvery > wire.MaxInterval:
		t.Fatalf("accepted intervals %v, %v", spec.Flush, spec.StatsEvery)
	case len(spec.Client) > wire.MaxNameLen || !utf8.ValidString(spec.Client):
		t.Fatalf("accepted client %q", spec.Client)
	}
}

func checkAcceptedRules(t *testing.T, rules []wire.Rule) {
	t.Helper()
	if len(rules) == 0 || len(rules) > wire.MaxRules {
		t.Fatalf("accepted %d rules", len(rules))
	}
	for _, r := range rules {
		if r.Pattern == "" || len(r.Pattern) > wire.MaxPatternLen || len(r.Filter) > wire.MaxFilterLen || !utf8.ValidString(r.Filter) {
			t.Fatalf("accepted rule %+v", r)
		}
	}
}

// checkError checks that a refusal is an *Error with a code and a status.
func checkError(t *testing.T, err error) {
	t.Helper()
	e, ok := err.(*wire.Error)
	if !ok || e.Code == "" || e.Status < 400 || e.Message == "" {
		t.Fatalf("refusal %#v is not a protocol error", err)
	}
}

func encodeRecordSpec(t *testing.T, spec RecordSpec) []byte {
	t.Helper()
	dur := ""
	if spec.Duration > 0 {
		dur = spec.Duration.String()
	}
	b, err := json.Marshal(wire.RecordRequest{
		Rules:         spec.Rules,
		Mode:          spec.Mode.String(),
		Buffer:        strconv.Itoa(spec.Buffer),
		Duration:      dur,
		FlushInterval: spec.Flush.String(),
		StatsInterval: spec.StatsEvery.String(),
		Client:        spec.Client,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
