package format_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format"
	"github.com/tracemark/tracemark/format/internal/tracetest"
)

// FuzzConvert writes arbitrary bytes as the data stream file of a trace
// whose metadata is the small test trace's (every field type, truncation
// trailers), and converts it to every format. Whatever the bytes, no
// conversion panics; an error is a *ctf.CorruptError naming the file and
// an offset within it; the Chrome JSON output is a complete document, the
// Perfetto output a well-formed sequence of packets,
// every JSON Lines line is valid JSON, and all formats and Summarize
// agree on the number of events and notices. The seed corpus in
// testdata/fuzz/FuzzConvert (the small trace's streams and damaged copies,
// see TestWriteFuzzSeeds) runs with plain go test.
func FuzzConvert(f *testing.F) {
	good := f.TempDir()
	tracetest.Write(f, good)
	for _, name := range []string{"channel0_0", "channel0_1", "channel0_5"} {
		data, err := os.ReadFile(filepath.Join(good, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	dir := f.TempDir()
	meta, err := os.ReadFile(filepath.Join(good, "metadata"))
	if err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "metadata"), meta, 0o644); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "channel0_0")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		checkErr := func(what string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			var ce *ctf.CorruptError
			if !errors.As(err, &ce) || ce.File != path || ce.Offset < 0 || ce.Offset > int64(len(data)) {
				t.Fatalf("%s: error %v is not a CorruptError within %s", what, err, path)
			}
		}
		counts := map[string][2]int{} // format → events, notices
		for _, to := range format.Formats() {
			var out bytes.Buffer
			checkErr(to, format.Convert(dir, to, &out))
			var events, notices int
			switch to {
			case format.Text:
				for l := range strings.Lines(out.String()) {
					if !strings.HasPrefix(l, "[") || !strings.HasSuffix(l, "\n") {
						t.Fatalf("text line %q", l)
					}
					if f := strings.Fields(l); len(f) > 4 && f[4] == "[lost" {
						notices++
					} else {
						events++
					}
				}
			case format.JSONL:
				for l := range bytes.Lines(out.Bytes()) {
					var m map[string]any
					if err := json.Unmarshal(l, &m); err != nil {
						t.Fatalf("JSON line %q: %v", l, err)
					}
					if _, ok := m["event"]; ok {
						events++
					} else {
						notices++
					}
				}
			case format.ChromeJSON:
				var d struct{ TraceEvents []map[string]any }
				if err := json.Unmarshal(out.Bytes(), &d); err != nil {
					t.Fatalf("perfetto output: %v\n%s", err, out.Bytes())
				}
				for _, e := range d.TraceEvents {
					switch {
					case e["ph"] == "M":
					case e["cat"] == "tracemark":
						notices++
					default:
						events++
					}
				}
			}
			if to == format.Perfetto {
				// Slices and instants are events and notices together.
				events = perfettoSlices(t, out.Bytes())
			}
			counts[to] = [2]int{events, notices}
		}
		if counts[format.Text] != counts[format.JSONL] || counts[format.Text] != counts[format.ChromeJSON] {
			t.Fatalf("formats disagree on (events, notices): %v", counts)
		}
		if c := counts[format.Text]; counts[format.Perfetto][0] != c[0]+c[1] {
			t.Fatalf("perfetto has %d slices and instants, want %d events and notices", counts[format.Perfetto][0], c[0]+c[1])
		}
		s, err := format.Summarize(dir)
		checkErr("summary", err)
		if s.Events != uint64(counts[format.Text][0]) {
			t.Fatalf("summary counts %d events, the formats %d", s.Events, counts[format.Text][0])
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpus of FuzzConvert into
// testdata/fuzz/FuzzConvert when TRACEMARK_WRITE_SEEDS=1: the streams of
// the small trace and copies damaged where the reader checks something.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("TRACEMARK_WRITE_SEEDS") != "1" {
		t.Skip("set TRACEMARK_WRITE_SEEDS=1 to rewrite testdata/fuzz/FuzzConvert")
	}
	good := t.TempDir()
	tracetest.Write(t, good)
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(good, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	s0, s1, s5 := read("channel0_0"), read("channel0_1"), read("channel0_5")
	// Packet context offsets: timestamp_end 32, content_size 40,
	// packet_size 48, packet_seq_num 56, events_discarded 64.
	le := binary.LittleEndian
	second := int(le.Uint64(s1[48:]) / 8) // packet_size of the first packet
	seeds := map[string][]byte{
		"stream0":              s0,
		"stream1_lost":         s1,
		"stream5_discarded":    s5,
		"empty":                nil,
		"header_only":          s0[:ctf.PacketPreambleSize],
		"cut_in_header":        s0[:40],
		"cut_in_second":        s1[:second+30],
		"cut_in_record":        s0[:ctf.PacketPreambleSize+5],
		"two_streams_glued":    append(bytes.Clone(s0), s5...),
		"bad_class_id":         set(s0, ctf.PacketPreambleSize, 0xfe),
		"bad_uuid":             set(s0, 4, 0),
		"content_too_big":      set64(s0, 40, 1<<40),
		"content_not_bytes":    set64(s0, 40, le.Uint64(s0[40:])-3),
		"content_too_small":    set64(s0, 40, 8),
		"end_far_away":         set64(s0, 32, 1<<62),
		"ts_out_of_packet":     set64(s0, ctf.PacketPreambleSize+2, 1<<50),
		"seq_going_back":       set64(s1, second+56, 0),
		"discarded_going_back": set64(set64(s1, 64, 100), second+64, 1),
		"string_unterminated":  cutStrings(s0),
		"huge_bytes_length":    setBytesLen(s0),
	}
	out := filepath.Join("testdata", "fuzz", "FuzzConvert")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range seeds {
		text := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(out, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func set(b []byte, off int, v byte) []byte {
	b = bytes.Clone(b)
	b[off] = v
	return b
}

func set64(b []byte, off int, v uint64) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint64(b[off:], v)
	return b
}

// cutStrings replaces every NUL of the http:request record's strings in
// stream 0 with 'x', so that a string runs to the end of the packet.
func cutStrings(s0 []byte) []byte {
	b := bytes.Clone(s0)
	i := bytes.Index(b, []byte("GET\x00"))
	b[i+3] = 'x'
	j := bytes.IndexByte(b[i+4:], 0)
	b[i+4+j] = 'x'
	return b
}

// setBytesLen makes the length of the body field in stream 0 huge.
func setBytesLen(s0 []byte) []byte {
	b := bytes.Clone(s0)
	i := bytes.Index(b, []byte("\\\x00"))         // end of the path string
	binary.LittleEndian.PutUint32(b[i+2:], 1<<31) // the body length follows
	return b
}

// perfettoSlices checks that out is a sequence of TracePacket fields and
// counts its TrackEvents of type TYPE_SLICE_BEGIN (1) and TYPE_INSTANT
// (3).
func perfettoSlices(t *testing.T, out []byte) int {
	t.Helper()
	n := 0
	for len(out) > 0 {
		num, typ, l := protowire.ConsumeTag(out)
		if l < 0 || num != 1 || typ != protowire.BytesType {
			t.Fatalf("perfetto output: not a Trace.packet field at %d", len(out))
		}
		pkt, m := protowire.ConsumeBytes(out[l:])
		if m < 0 {
			t.Fatalf("perfetto output: %v", protowire.ParseError(m))
		}
		out = out[l+m:]
		for len(pkt) > 0 {
			num, typ, l := protowire.ConsumeTag(pkt)
			m := protowire.ConsumeFieldValue(num, typ, pkt[l:])
			if l < 0 || m < 0 {
				t.Fatalf("perfetto output: bad packet")
			}
			if num == 11 { // track_event
				ev, _ := protowire.ConsumeBytes(pkt[l:])
				for len(ev) > 0 {
					fnum, ftyp, fl := protowire.ConsumeTag(ev)
					fm := protowire.ConsumeFieldValue(fnum, ftyp, ev[fl:])
					if fl < 0 || fm < 0 {
						t.Fatalf("perfetto output: bad track event")
					}
					if fnum == 9 { // type
						if v, _ := protowire.ConsumeVarint(ev[fl:]); v == 1 || v == 3 {
							n++
						}
					}
					ev = ev[fl+fm:]
				}
			}
			pkt = pkt[l+m:]
		}
	}
	return n
}
