package format_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format"
	"github.com/tracemark/tracemark/format/chromejson"
	"github.com/tracemark/tracemark/format/internal/tracetest"
	"github.com/tracemark/tracemark/format/jsonl"
	"github.com/tracemark/tracemark/format/perfetto"
	"github.com/tracemark/tracemark/format/text"
)

// direct converts the trace in dir with a format's Writer, without
// Convert.
func direct(t *testing.T, dir, to string, opts ...text.Option) []byte {
	t.Helper()
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	var w interface {
		WriteEvent(*ctf.Event) error
		Close() error
	}
	switch to {
	case format.ChromeJSON:
		w = chromejson.NewWriter(&out, r.Info(), r.Classes())
	case format.Text:
		w = text.NewWriter(&out, opts...)
	case format.JSONL:
		w = jsonl.NewWriter(&out)
	}
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestConvert(t *testing.T) {
	dir := t.TempDir()
	tracetest.Write(t, dir)
	tests := []struct {
		to        string
		text      []text.Option
		firstLine string
	}{
		{"text", nil, `[2023-11-14T22:13:20.000000100Z] (+?.?????????) s0 cpu0 ints:signed: a=-128 b=-32768 c=-2147483648 d=-9223372036854775808`},
		{"TEXT", []text.Option{text.WithRelative()}, `[     0.000000000] (+?.?????????) s0 cpu0 ints:signed: a=-128 b=-32768 c=-2147483648 d=-9223372036854775808`},
		{"jsonl", nil, `{"ts_ns":1700000000000000100,"time":"2023-11-14T22:13:20.000000100Z","rel_ns":0,"stream":0,"cpu":0,"event":"ints:signed","provider":"ints","fields":{"a":-128,"b":-32768,"c":-2147483648,"d":-9223372036854775808}}`},
		{"chrome-json", nil, `{"traceEvents":[`},
	}
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			var out bytes.Buffer
			if err := format.Convert(dir, tt.to, &out, format.WithText(tt.text...)); err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(out.String(), "\n")
			if first != tt.firstLine {
				t.Errorf("first line %q, want %q", first, tt.firstLine)
			}
			if want := direct(t, dir, strings.ToLower(tt.to), tt.text...); !bytes.Equal(out.Bytes(), want) {
				t.Errorf("Convert output differs from the Writer's:\n%s\nwant\n%s", out.Bytes(), want)
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	dir := t.TempDir()
	tracetest.Write(t, dir)
	var out bytes.Buffer
	err := format.Convert(dir, "svg", &out)
	if !errors.Is(err, format.ErrUnknownFormat) || !strings.Contains(err.Error(), "perfetto, chrome-json, text, jsonl") {
		t.Errorf("unknown format: %v", err)
	}
	missing := filepath.Join(dir, "missing")
	if err := format.Convert(missing, "text", &out); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing trace: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("output on error: %q", out.String())
	}
	if err := format.Convert(dir, "text", failWriter{}); !errors.Is(err, errDisk) || !strings.Contains(err.Error(), "writing text output") {
		t.Errorf("write error: %v", err)
	}
}

type failWriter struct{}

var errDisk = errors.New("disk full")

func (failWriter) Write(p []byte) (int, error) { return 0, errDisk }

// TestConvertCorrupt damages a stream file in several ways: every format
// converts the events before the damage, completes its output and returns
// a *ctf.CorruptError naming the file and offset.
func TestConvertCorrupt(t *testing.T) {
	good := t.TempDir()
	tracetest.Write(t, good)
	stream1, err := os.ReadFile(filepath.Join(good, "channel0_1"))
	if err != nil {
		t.Fatal(err)
	}
	// Stream 1 holds two packets; the second starts after the first's
	// packet_size (in bits, at offset 48).
	second := int(binary.LittleEndian.Uint64(stream1[48:]) / 8)
	tests := []struct {
		name    string
		damage  func([]byte) []byte
		offset  int64
		reason  string
		eventsS int // events of stream 1 converted before the error
	}{
		{"cut in a packet header", func(b []byte) []byte { return b[:second+10] }, int64(second), "truncated packet header", 2},
		{"cut in the records", func(b []byte) []byte { return b[:len(b)-3] }, int64(second + 48), "exceeds the", 2},
		{"bad magic", func(b []byte) []byte { b[second] ^= 0xff; return b }, int64(second), "bad packet magic", 2},
		{"bad first magic", func(b []byte) []byte { b[0] ^= 0xff; return b }, 0, "bad packet magic", 0},
		{"garbage after", func(b []byte) []byte { return append(b, "garbage"...) }, int64(len(stream1)), "truncated packet header", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range []string{"metadata", "channel0_0", "channel0_5"} {
				data, err := os.ReadFile(filepath.Join(good, name))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "channel0_1")
			if err := os.WriteFile(path, tt.damage(bytes.Clone(stream1)), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, to := range format.Formats() {
				var out bytes.Buffer
				err := format.Convert(dir, to, &out)
				var ce *ctf.CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("%s: error %v, want a *ctf.CorruptError", to, err)
				}
				if ce.File != path || !strings.Contains(ce.Reason, tt.reason) {
					t.Errorf("%s: error %v, want file %s and %q", to, err, path, tt.reason)
				}
				if ce.Offset != tt.offset {
					t.Errorf("%s: offset %d, want %d", to, ce.Offset, tt.offset)
				}
				if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "offset") {
					t.Errorf("%s: message %q does not name the file and offset", to, err)
				}
				switch to {
				case format.ChromeJSON:
					if !json.Valid(out.Bytes()) {
						t.Errorf("perfetto output of a corrupt trace is not a complete document:\n%s", out.Bytes())
					}
				case format.Text:
					if n := strings.Count(out.String(), " s1 cpu1 "); n < tt.eventsS {
						t.Errorf("text: %d lines of stream 1 before the error, want at least %d", n, tt.eventsS)
					}
				}
			}
			if _, err := format.Summarize(dir); !errors.As(err, new(*ctf.CorruptError)) {
				t.Errorf("Summarize: %v", err)
			}
		})
	}
}

// TestInvalidOption checks that a format's option that the trace cannot
// satisfy makes Convert fail with an error naming the option.
func TestInvalidOption(t *testing.T) {
	dir := t.TempDir()
	tracetest.Write(t, dir)
	err := format.Convert(dir, format.Perfetto, io.Discard, format.WithPerfetto(perfetto.WithCounters(perfetto.FieldRef{Event: "no:such", Field: "f"})))
	if !errors.Is(err, perfetto.ErrBadField) || !strings.Contains(err.Error(), "WithCounters") {
		t.Errorf("Convert: %v, want ErrBadField naming WithCounters", err)
	}
}
