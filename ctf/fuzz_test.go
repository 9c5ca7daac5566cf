package ctf

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fuzzMetadata is the metadata of the trace written by writeTestTrace.
func fuzzMetadata(t testing.TB) *parsedMetadata {
	t.Helper()
	info := testInfo()
	info.Env["tracer_name"] = "tracemark"
	text := metadataPreamble(&info)
	for i := range testClasses {
		text = append(text, eventBlock(&testClasses[i])...)
	}
	md, err := parseMetadata(string(text))
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// FuzzReadStream reads arbitrary bytes as a data stream file of the test
// trace: the reader must return events or a *CorruptError, never panic or
// loop. The seed corpus in testdata/fuzz/FuzzReadStream holds the streams
// of the interop trace and damaged variants; more seeds come from a trace
// written at run time, including one with its tail packet.
func FuzzReadStream(f *testing.F) {
	dir := f.TempDir()
	w := writeTestTrace(f, dir, false)
	for _, name := range []string{"channel0_0", "channel0_1"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	w.Close()
	md := fuzzMetadata(f)
	md.info.UUID = testTraceUUID
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader("fuzz", md)
		r.addStream(0, "fuzz/channel0_0", bytes.NewReader(data), nil, int64(len(data)))
		for n := 0; ; n++ {
			ev, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Offset < 0 || ce.Offset > int64(len(data)) {
					t.Fatalf("error %v is not a CorruptError within the data", err)
				}
				return
			}
			if n > len(data) {
				t.Fatalf("%d items from %d bytes", n, len(data))
			}
			if ev.Class != nil && len(ev.Fields) != len(ev.Class.Fields) {
				t.Fatalf("%d values for %d fields", len(ev.Fields), len(ev.Class.Fields))
			}
		}
	})
}

// FuzzParseMetadata parses arbitrary metadata text: no panic, and metadata
// that parses and can be written again parses again to the same classes.
func FuzzParseMetadata(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		md, err := parseMetadata(text)
		if err != nil {
			return
		}
		if validateInfo(&md.info) != nil {
			return
		}
		again := metadataPreamble(&md.info)
		for _, ec := range md.classes {
			again = append(again, eventBlock(ec)...)
		}
		md2, err := parseMetadata(string(again))
		if err != nil {
			t.Fatalf("regenerated metadata does not parse: %v\n%s", err, again)
		}
		if len(md2.classes) != len(md.classes) || md2.info.Clock != md.info.Clock || md2.info.UUID != md.info.UUID {
			t.Fatalf("regenerated metadata differs")
		}
		for i := range md.classes {
			if !md.classes[i].equal(md2.classes[i]) {
				t.Fatalf("class %+v became %+v", md.classes[i], md2.classes[i])
			}
		}
	})
}
