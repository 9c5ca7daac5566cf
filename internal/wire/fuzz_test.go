package wire

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tracemark/tracemark/module"
)

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
		if spec, err := ParseRecordRequest(body); err == nil {
			checkRecordSpec(t, spec)
			again, err := ParseRecordRequest(encodeRecordSpec(t, spec))
			if err != nil || !reflect.DeepEqual(again, spec) {
				t.Fatalf("round trip: %+v, %v; want %+v", again, err, spec)
			}
		} else {
			checkError(t, err)
		}
		if spec, err := ParseEnableRequest(body); err == nil {
			checkAcceptedRules(t, spec.Rules)
			if spec.Buffer < MinBuffer || spec.Buffer > MaxBuffer {
				t.Fatalf("accepted buffer %d", spec.Buffer)
			}
		} else {
			checkError(t, err)
		}
		if ps, err := ParseDisableRequest(body); err == nil {
			if len(ps) == 0 || len(ps) > MaxRules {
				t.Fatalf("accepted %d patterns", len(ps))
			}
		} else {
			checkError(t, err)
		}
		if spec, err := ParseInsmodRequest(body); err == nil {
			checkInsmodSpec(t, spec)
		} else {
			checkError(t, err)
		}
	})
}

func checkInsmodSpec(t *testing.T, spec InsmodSpec) {
	t.Helper()
	p := spec.Path
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || len(p) > MaxPathLen || !utf8.ValidString(p) ||
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
	case spec.Buffer < MinBuffer || spec.Buffer > MaxBuffer:
		t.Fatalf("accepted buffer %d", spec.Buffer)
	case spec.Duration < 0 || spec.Duration > MaxDuration:
		t.Fatalf("accepted duration %v", spec.Duration)
	case spec.Flush < MinInterval || spec.Flush > MaxInterval, spec.StatsEvery < MinInterval || spec.StatsEvery > MaxInterval:
		t.Fatalf("accepted intervals %v, %v", spec.Flush, spec.StatsEvery)
	case len(spec.Client) > MaxNameLen || !utf8.ValidString(spec.Client):
		t.Fatalf("accepted client %q", spec.Client)
	}
}

func checkAcceptedRules(t *testing.T, rules []Rule) {
	t.Helper()
	if len(rules) == 0 || len(rules) > MaxRules {
		t.Fatalf("accepted %d rules", len(rules))
	}
	for _, r := range rules {
		if r.Pattern == "" || len(r.Pattern) > MaxPatternLen || len(r.Filter) > MaxFilterLen || !utf8.ValidString(r.Filter) {
			t.Fatalf("accepted rule %+v", r)
		}
	}
}

// checkError checks that a refusal is an *Error with a code and a status.
func checkError(t *testing.T, err error) {
	t.Helper()
	e, ok := err.(*Error)
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
	b, err := json.Marshal(RecordRequest{
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

// FuzzReadStream feeds arbitrary bytes to the client side of an event
// stream: the frame reader, the classes decoder and the record decoder
// must return errors, never panic or allocate without bound, whatever an
// agent (or something posing as one) sends.
func FuzzReadStream(f *testing.F) {
	var seed bytes.Buffer
	fw := NewFrameWriter(&seed)
	_ = fw.WriteJSON(FrameHello, Hello{Protocol: Version})
	_ = fw.WriteJSON(FrameClasses, Classes{Classes: []EventClass{{ID: 1, Name: "a:b", Truncation: true, Fields: []ClassField{
		{Name: "s", Type: "string"}, {Name: "n", Type: "int16"}, {Name: "b", Type: "bytes"}, {Name: "f", Type: "float32"}}}}})
	rec := []byte{1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x', 0, 2, 0, 1, 0, 0, 0, 9, 0, 0, 0x80, 0x3f, 0}
	_ = fw.WritePacket(PacketHeader{Events: 1}, rec)
	_ = fw.WriteEmpty(FrameSync)
	_ = fw.WriteJSON(FrameEnd, End{Reason: EndStopped})
	f.Add(seed.Bytes())
	f.Add([]byte{'P', 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFrameReader(bytes.NewReader(data))
		dec := NewDecoder()
		for {
			frame, err := fr.Next()
			if err != nil {
				return
			}
			switch frame.Type {
			case FrameClasses:
				var cs Classes
				if frame.JSON(&cs) == nil && dec.Add(cs.Classes) == nil {
					for i := range cs.Classes {
						_, _ = cs.Classes[i].CTF()
					}
				}
			case FramePacket:
				if _, recs, err := frame.Packet(); err == nil {
					_ = dec.Decode(recs, func(r *Record) error {
						if len(r.Fields) != len(r.Class.Fields) {
							t.Fatalf("record of %s with %d fields", r.Class.Name, len(r.Fields))
						}
						return nil
					})
				}
			}
		}
	})
}
