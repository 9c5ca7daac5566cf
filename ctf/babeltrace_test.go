package ctf

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wantPretty is Babeltrace 2's pretty output (with --clock-gmt) of the
// trace written by writeTestTrace.
var wantPretty = []string{
	`[22:13:20.000000100] (+?.?????????) testhost:app:(4242) ints:signed: { cpu_id = 0 }, { a = -128, b = -32768, c = -2147483648, d = -9223372036854775808 }`,
	`[22:13:20.000000110] (+0.000000010) testhost:app:(4242) ints:signed: { cpu_id = 1 }, { a = 127, b = 32767, c = 2147483647, d = 9223372036854775807 }`,
	`[22:13:20.000000120] (+0.000000010) testhost:app:(4242) ints:unsigned: { cpu_id = 0 }, { a = 255, b = 65535, c = 4294967295, d = 18446744073709551615 }`,
	`[22:13:20.000000130] (+0.000000010) testhost:app:(4242) ints:unsigned: { cpu_id = 5 }, { a = 0, b = 1, c = 2, d = 3 }`,
	`[22:13:20.000000140] (+0.000000010) testhost:app:(4242) floats: { cpu_id = 0 }, { x = 1.5, y = -0.25 }`,
	`[22:13:20.000000150] (+0.000000010) testhost:app:(4242) floats: { cpu_id = 1 }, { x = inf, y = -inf }`,
	`[22:13:20.000000160] (+0.000000010) testhost:app:(4242) floats: { cpu_id = 5 }, { x = nan, y = 1e+300 }`,
	`[22:13:20.000000170] (+0.000000010) testhost:app:(4242) http:request: { cpu_id = 0 }, { method = "GET", path = "/héllo/世界\?q=\"x\"\\", _body_len = 3, body = [ [0] = 0, [1] = 1, [2] = 255 ], status = 200, latency = 1500000, ok = 1 }`,
	`[22:13:20.000000180] (+0.000000010) testhost:app:(4242) http:request: { cpu_id = 1 }, { method = "", path = "", _body_len = 0, body = [ ], status = 0, latency = -1, ok = 0, _truncated = 6 }`,
	`[22:13:20.000000190] (+0.000000010) testhost:app:(4242) empty: { cpu_id = 5 }, { }`,
	`[22:13:20.000000200] (+0.000000010) testhost:app:(4242) odd "name" \ é: { cpu_id = 0 }, { string = "tab\there", _event_len = 2, event = [ [0] = 104, [1] = 105 ] }`,
	`[22:13:20.000000300] (+0.000000100) testhost:app:(4242) empty: { cpu_id = 0 }, { }`,
	`[22:13:20.000000310] (+0.000000010) testhost:app:(4242) ints:signed: { cpu_id = 1 }, { a = -1, b = 0, c = 1, d = 2 }`,
}

// wantWarnings are Babeltrace 2's warnings (on stderr) for the discarded
// events of stream 1 and the lost packets of stream 5; DIR stands for the
// trace directory.
var wantWarnings = []string{
	`WARNING: Tracer discarded 4 events between [22:13:20.000000185] and [22:13:20.000000320] in trace "testhost" (UUID: 2a6422d0-6cee-11e0-8c08-cb07d7b3a564) within stream "DIR/channel0_1" (stream class ID: 0, stream ID: 1).`,
	`WARNING: Tracer discarded 2 packets between [22:13:20.000000195] and [22:13:20.000000400] in trace "testhost" (UUID: 2a6422d0-6cee-11e0-8c08-cb07d7b3a564) within stream "DIR/channel0_5" (stream class ID: 0, stream ID: 2).`,
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func compareLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("%s line %d:\n got: %s\nwant: %s", what, i+1, g, w)
		}
	}
}

// TestBabeltraceInterop checks Babeltrace's exact output for a trace with
// every field type, several streams, discarded events and lost packets,
// both after Close and for a Writer that was never closed (as after a
// crash: every stream still ends with its empty tail packet).
func TestBabeltraceInterop(t *testing.T) {
	for _, closed := range []bool{true, false} {
		t.Run(fmt.Sprintf("closed=%v", closed), func(t *testing.T) {
			dir := t.TempDir()
			writeTestTrace(t, dir, closed)
			stdout, stderr := babeltrace(t, "--clock-gmt", dir)
			compareLines(t, "stdout", lines(stdout), wantPretty)
			var warn []string
			for _, w := range wantWarnings {
				warn = append(warn, strings.ReplaceAll(w, "DIR", dir))
			}
			compareLines(t, "stderr", lines(stderr), warn)
		})
	}
}

// TestBabeltraceClock checks that the Reader's nanosecond times equal
// Babeltrace's for clocks with various frequencies and offsets.
func TestBabeltraceClock(t *testing.T) {
	clocks := []Clock{
		{Name: "monotonic", Frequency: 1e9},
		{Name: "ms", Frequency: 1000, OffsetSeconds: 1234567890, Offset: 2500},
		{Name: "odd", Frequency: 3_000_001, OffsetSeconds: 10, Offset: 7_000_000},
		{Name: "tsc", Frequency: 2_400_000_000, OffsetSeconds: 1700000000, Offset: 1 << 40},
	}
	for _, c := range clocks {
		tss := []uint64{0, 1, 999, 1000, 123456789, 1 << 40}
		if c.Frequency >= 1e6 {
			tss = append(tss, 1<<50+12345)
		}
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Create(dir, TraceInfo{Clock: c})
			if err != nil {
				t.Fatal(err)
			}
			ec := EventClass{ID: 1, Name: "tick"}
			if err := w.AddEventClass(ec); err != nil {
				t.Fatal(err)
			}
			var recs []byte
			for _, ts := range tss {
				recs = AppendEventHeader(recs, 1, ts)
			}
			if err := w.WritePacket(0, PacketInfo{EndTS: tss[len(tss)-1]}, recs); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			stdout, _ := babeltrace(t, "--clock-seconds", "--no-delta", dir)
			got := lines(stdout)
			evs := readAll(t, dir)
			if len(got) != len(evs) || len(evs) != len(tss) {
				t.Fatalf("babeltrace printed %d events, Reader read %d, wrote %d", len(got), len(evs), len(tss))
			}
			for i, ev := range evs {
				want := fmt.Sprintf("[%d.%09d] tick: { cpu_id = 0 }, { }", ev.Time/1e9, ev.Time%1e9)
				if got[i] != want {
					t.Errorf("event %d (%d cycles): babeltrace %q, Reader %q", i, tss[i], got[i], want)
				}
			}
		})
	}
}

var counterRE = regexp.MustCompile(`(?m)^\s*(\d+) (Event|Discarded event|Discarded packet) messages?$`)

var haveBabeltrace = func() bool {
	_, err := exec.LookPath("babeltrace2")
	return err == nil
}()

// counts are the message counts of Babeltrace's counter sink.
type counts struct{ events, discardedEvents, discardedPackets int }

// babeltraceCount reads the trace with Babeltrace's counter sink and
// returns its message counts. Any output on stderr is an error.
func babeltraceCount(t *testing.T, dir string) counts {
	t.Helper()
	stdout, stderr := babeltrace(t, dir, "-c", "sink.utils.counter")
	if stderr != "" {
		t.Errorf("babeltrace stderr:\n%s", stderr)
	}
	// The counter prints running totals; the last ones are final.
	var c counts
	found := false
	for _, m := range counterRE.FindAllStringSubmatch(stdout, -1) {
		n, _ := strconv.Atoi(m[1])
		switch m[2] {
		case "Event":
			c.events, found = n, true
		case "Discarded event":
			c.discardedEvents = n
		case "Discarded packet":
			c.discardedPackets = n
		}
	}
	if !found {
		t.Fatalf("no event count in babeltrace output:\n%s\nstderr:\n%s", stdout, stderr)
	}
	return c
}

// TestBabeltraceMillionEvents writes one million events to 4 streams and
// checks that Babeltrace reads them all, with the counter sink and with the
// pretty printer (about 2 s in all, so it also runs with -short).
func TestBabeltraceMillionEvents(t *testing.T) {
	const events, perPacket, streams = 1_000_000, 1000, 4
	dir := t.TempDir()
	w, err := Create(dir, testInfo())
	if err != nil {
		t.Fatal(err)
	}
	ec := EventClass{ID: 0, Name: "bench:event", Fields: []Field{{Name: "a", Type: i64}, {Name: "b", Type: i64}, {Name: "s", Type: str}}}
	if err := w.AddEventClass(ec); err != nil {
		t.Fatal(err)
	}
	var recs []byte
	var seq [streams]uint64
	for i := 0; i < events; i += perPacket {
		recs = recs[:0]
		begin := uint64(i) * 10
		for j := range perPacket {
			recs = AppendEventHeader(recs, 0, begin+uint64(j)*10)
			recs = AppendInt(recs, 64, int64(i+j))
			recs = AppendInt(recs, 64, -int64(i+j))
			recs = AppendString(recs, "0123456789abcdef")
		}
		s := uint32(i/perPacket) % streams
		if err := w.WritePacket(s, PacketInfo{BeginTS: begin, EndTS: begin + perPacket*10, Seq: seq[s], CPU: s}, recs); err != nil {
			t.Fatal(err)
		}
		seq[s]++
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if n := babeltraceCount(t, dir).events; n != events {
		t.Errorf("babeltrace read %d events, want %d", n, events)
	}
	t.Logf("babeltrace2 -c sink.utils.counter: %v", time.Since(start))

	// The pretty printer, counting lines from a pipe.
	start = time.Now()
	cmd := exec.Command("babeltrace2", "--clock-seconds", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	n, last := 0, ""
	for sc.Scan() {
		n++
		last = sc.Text()
	}
	if err := cmd.Wait(); err != nil || sc.Err() != nil || stderr.Len() > 0 {
		t.Fatalf("babeltrace2: %v, %v, stderr: %s", err, sc.Err(), stderr.String())
	}
	if n != events {
		t.Errorf("babeltrace printed %d lines, want %d", n, events)
	}
	wantLast := `[1700000000.009999990] (+0.000000010) testhost:app:(4242) bench:event: { cpu_id = 3 }, { a = 999999, b = -999999, s = "0123456789abcdef" }`
	if last != wantLast {
		t.Errorf("last line:\n got: %s\nwant: %s", last, wantLast)
	}
	t.Logf("babeltrace2 pretty-printed %d lines in %v", n, time.Since(start))
}

// TestBabeltraceMetadataAppended adds event classes while packets are being
// written, enough of them for some metadata appends to be done in place
// and others by replacing the file, and checks Babeltrace's output both
// before Close and after.
func TestBabeltraceMetadataAppended(t *testing.T) {
	dir := t.TempDir()
	info := testInfo()
	info.Env = map[string]string{"hostname": "h"}
	w, err := Create(dir, info)
	if err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(dir, "metadata")
	var want []string
	var inPlace, replaced int
	var seq [2]uint64
	ts := uint64(1000)
	for i := range 40 {
		before, err := os.Stat(mpath)
		if err != nil {
			t.Fatal(err)
		}
		ec := EventClass{ID: uint16(i), Name: fmt.Sprintf("late:class%d", i), Fields: []Field{
			{Name: "n", Type: u32}, {Name: "text", Type: str}, {Name: "blob", Type: byt}, {Name: "pad_field_with_a_long_name_to_grow_the_metadata", Type: f64}}}
		if err := w.AddEventClass(ec); err != nil {
			t.Fatal(err)
		}
		after, err := os.Stat(mpath)
		if err != nil {
			t.Fatal(err)
		}
		if os.SameFile(before, after) {
			inPlace++
		} else {
			replaced++
		}
		// Use the new class (and an old one) right away, on two streams.
		for _, id := range []int{i, i / 2} {
			ec := EventClass{ID: uint16(id), Fields: []Field{{Name: "n", Type: u32}, {Name: "text", Type: str}, {Name: "blob", Type: byt}, {Name: "p", Type: f64}}}
			recs, err := AppendRecord(nil, &ec, ts, []Value{UintValue(uint64(id)), StringValue("x"), BytesValue([]byte{byte(id)}), FloatValue(0.5)}, 0)
			if err != nil {
				t.Fatal(err)
			}
			s := uint32(id % 2)
			if err := w.WritePacket(s, PacketInfo{BeginTS: ts, EndTS: ts, Seq: seq[s], CPU: s}, recs); err != nil {
				t.Fatal(err)
			}
			seq[s]++
			want = append(want, fmt.Sprintf("[%d.%09d] h late:class%d: { cpu_id = %d }, { n = %d, text = \"x\", _blob_len = 1, blob = [ [0] = %d ], pad_field_with_a_long_name_to_grow_the_metadata = 0.5 }",
				1700000000, ts, id, s, id, id))
			ts += 10
		}
		if i == 20 {
			// Mid-recording: the trace is readable as it is.
			stdout, stderr := babeltrace(t, "--clock-seconds", "--no-delta", dir)
			compareLines(t, "stdout (mid-recording)", lines(stdout), want)
			if stderr != "" {
				t.Errorf("stderr: %s", stderr)
			}
		}
	}
	if inPlace == 0 || replaced == 0 {
		t.Errorf("metadata appended in place %d times and replaced %d times; want both paths exercised", inPlace, replaced)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	stdout, stderr := babeltrace(t, "--clock-seconds", "--no-delta", dir)
	compareLines(t, "stdout", lines(stdout), want)
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	if n := len(readAll(t, dir)); n != len(want) {
		t.Errorf("Reader read %d events, want %d", n, len(want))
	}
}
