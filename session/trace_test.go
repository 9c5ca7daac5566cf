package session_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

// babeltrace runs the real Babeltrace 2 on a trace directory and returns
// its standard output lines and its standard error.
func babeltrace(t *testing.T, dir string, args ...string) (lines []string, stderr string) {
	t.Helper()
	if _, err := exec.LookPath("babeltrace2"); err != nil {
		t.Skip("babeltrace2 is not installed (apt-get install babeltrace2; .ci/run installs it)")
	}
	cmd := exec.Command("babeltrace2", append(args, dir)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("babeltrace2 %s: %v\n%s", dir, err, errb.String())
	}
	text := strings.TrimSpace(string(out))
	if text == "" {
		return nil, errb.String()
	}
	return strings.Split(text, "\n"), errb.String()
}

// btLine matches babeltrace2 --clock-cycles output:
// [cycles] (+delta) host:proc:(pid) name: { cpu_id = N }, { fields }
var btLine = regexp.MustCompile(`^\[(\d+)\] \(\+[?.0-9]+\) \S+ (\S+): \{ cpu_id = \d+ \}, \{ (.*) \}$`)

type btEvent struct {
	ts      uint64
	name    string
	payload string
}

func parseBabeltrace(t *testing.T, lines []string) []btEvent {
	t.Helper()
	var out []btEvent
	for _, l := range lines {
		m := btLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected babeltrace line: %q", l)
		}
		ts, _ := strconv.ParseUint(m[1], 10, 64)
		out = append(out, btEvent{ts, m[2], m[3]})
	}
	return out
}

func TestTraceIsReadByBabeltrace(t *testing.T) {
	s := newSession(t)
	mustEnable(t, s, "stest_http:*", "")
	mustEnable(t, s, "stest_bt:*", "")
	dir := filepath.Join(t.TempDir(), "trace")
	tw, err := session.CreateTrace(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	before := uint64(session.Now())
	reqDone.Fire("GET", 200, "/a", time.Millisecond)
	if err := tw.Flush(); err != nil { // a packet is written before the next class exists
		t.Fatal(err)
	}
	// Defined during the recording: its event class is appended to the
	// metadata.
	late := marker.Define6("stest_bt:late", marker.Int8("i8"), marker.Uint16("u16"), marker.Float64("f"),
		marker.Bool("ok"), marker.Bytes("raw"), marker.String("s"))
	late.Fire(-8, 65535, 2.5, true, []byte{1, 2}, "héllo")
	reqDone.Fire("PUT", -1, "/b", 0)
	reqDone.Fire("GET", 200, "/c\x00d", 0) // cut at the NUL: the only event with the trailer
	after := uint64(session.Now())
	s.Stop()
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	lines, _ := babeltrace(t, dir, "--clock-cycles")
	evs := parseBabeltrace(t, lines)
	want := []struct{ name, payload string }{
		{"stest_http:request_done", `method = "GET", status = 200, path = "/a", latency = 1000000`},
		{"stest_bt:late", `i8 = -8, u16 = 65535, f = 2.5, ok = 1, _raw_len = 2, raw = [ [0] = 1, [1] = 2 ], s = "héllo"`},
		{"stest_http:request_done", `method = "PUT", status = -1, path = "/b", latency = 0`},
		{"stest_http:request_done", `method = "GET", status = 200, path = "/c", latency = 0, _truncated = 4`},
	}
	if len(evs) != len(want) {
		t.Fatalf("babeltrace shows %d events, want %d:\n%s", len(evs), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if evs[i].name != w.name || evs[i].payload != w.payload {
			t.Errorf("event %d:\n got %s: %s\nwant %s: %s", i, evs[i].name, evs[i].payload, w.name, w.payload)
		}
		if evs[i].ts < before || evs[i].ts > after || (i > 0 && evs[i].ts < evs[i-1].ts) {
			t.Errorf("event %d: timestamp %d outside [%d, %d] or out of order", i, evs[i].ts, before, after)
		}
	}
	// Our reader sees the twin as the same marker: one class, and the
	// truncation on the last event only.
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	perClass := map[*ctf.EventClass]int{}
	var truncs []uint8
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		perClass[ev.Class]++
		truncs = append(truncs, ev.Truncated)
	}
	if len(perClass) != 2 || !slices.Equal(truncs, []uint8{0, 0, 0, 4}) {
		t.Errorf("reader: %d classes, truncated %v; want 2 classes, truncation on the last event", len(perClass), truncs)
	}
	for c, n := range perClass {
		if c.Name == "stest_http:request_done" && n != 3 {
			t.Errorf("reader: %d events of %s, want 3", n, c.Name)
		}
	}
	if st := s.Stats(); st.Truncated != 1 {
		t.Errorf("Stats().Truncated = %d, want 1", st.Truncated)
	}
	events, packets, _ := tw.Written()
	if events != 4 || packets < 2 {
		t.Errorf("Written() = %d events in %d packets", events, packets)
	}
}

func TestBabeltraceReportsDiscardedEvents(t *testing.T) {
	m := marker.Define1("stest_lost:e", marker.String("s"))
	s := newSession(t, session.WithBufferSize(8<<10), session.WithSubBufSize(4<<10))
	mustEnable(t, s, "stest_lost:e", "")
	dir := filepath.Join(t.TempDir(), "trace")
	tw, err := session.CreateTrace(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	payload := strings.Repeat("x", 200)
	for range 200 { // about 42 KiB into 8 KiB with no reader
		m.Fire(payload)
	}
	// A second round after a flush, so that a later packet carries the
	// grown discarded count.
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	m.Fire(payload)
	s.Stop()
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Discarded == 0 {
		t.Fatal("nothing discarded")
	}
	// Babeltrace reports the losses per stream, and the goroutine may
	// have fired on more than one P: the reports add up to the session's.
	events, discarded := babeltraceTotals(t, dir)
	if events != st.Delivered {
		t.Errorf("babeltrace shows %d events, session delivered %d", events, st.Delivered)
	}
	if discarded != st.Discarded {
		t.Errorf("babeltrace reports %d discarded events, the session %d", discarded, st.Discarded)
	}
}

func TestFlightRecorderSnapshotKeepsTheNewestEvents(t *testing.T) {
	m := marker.Define1("stest_fr:tick", marker.Int("n"))
	s := newSession(t, session.WithMode(session.Overwrite), session.WithBufferSize(16<<10), session.WithSubBufSize(4<<10))
	mustEnable(t, s, "stest_fr:tick", "")
	s.Start()
	const total = 10000
	for i := range total {
		m.Fire(i)
	}
	dir := filepath.Join(t.TempDir(), "snap")
	if err := session.WriteSnapshot(s, dir); err != nil { // while still recording
		t.Fatal(err)
	}
	m.Fire(total) // recording goes on after the snapshot
	s.Stop()

	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Each stream (buffer shard) holds the newest contiguous run of the
	// events recorded on it; the goroutine may have changed P meanwhile.
	var got []int64
	byStream := map[uint32][]int64{}
	for e, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if e.Class != nil {
			got = append(got, e.Fields[0].Int)
			byStream[e.Stream] = append(byStream[e.Stream], e.Fields[0].Int)
		}
	}
	if len(got) == 0 || got[len(got)-1] != total-1 {
		t.Fatalf("snapshot ends with %v, want the last event before it (%d)", got[max(0, len(got)-3):], total-1)
	}
	for stream, vals := range byStream {
		for i := 1; i < len(vals); i++ {
			if vals[i] <= vals[i-1] {
				t.Fatalf("stream %d: %d after %d", stream, vals[i], vals[i-1])
			}
		}
	}
	last := byStream[0]
	for _, vals := range byStream {
		if vals[len(vals)-1] == total-1 {
			last = vals
		}
	}
	for i := 1; i < len(last); i++ {
		if last[i] != last[i-1]+1 && len(byStream) == 1 {
			t.Fatalf("snapshot is not a contiguous run of the newest events: %d then %d", last[i-1], last[i])
		}
	}
	if len(got) > total/2 {
		t.Errorf("a 16 KiB buffer holds %d of %d events?", len(got), total)
	}
	if lines, _ := babeltrace(t, dir); len(lines) != len(got) {
		t.Errorf("babeltrace reads %d events, our reader %d", len(lines), len(got))
	}
}

func TestSnapshotTriggerIsRateLimited(t *testing.T) {
	panicked := marker.Define1("stest_fr:panic", marker.String("why"))
	work := marker.Define1("stest_fr:work", marker.Int("n"))
	s := newSession(t, session.WithMode(session.Overwrite))
	mustEnable(t, s, "stest_fr:work", "")
	s.Start()
	base := t.TempDir()
	taken := make(chan string, 10)
	n := 0
	trig, err := s.SnapshotOn("stest_fr:panic", time.Hour, func() error {
		n++
		dir := filepath.Join(base, fmt.Sprintf("snap%d", n))
		err := session.WriteSnapshot(s, dir)
		taken <- dir
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	work.Fire(1)
	work.Fire(2)
	panicked.Fire("first")
	dir := <-taken
	panicked.Fire("second, within the hour")
	trig.Close()
	if st := trig.Stats(); st.Fired != 2 || st.Taken != 1 || st.Failed != 0 || st.Suppressed != 1 || st.LastError != nil {
		t.Errorf("trigger stats %+v", st)
	}
	lines, _ := babeltrace(t, dir)
	if len(lines) != 2 || !strings.Contains(lines[1], "n = 2") {
		t.Errorf("snapshot holds %q", lines)
	}
}

// A snapshot that fails is counted as failed, not taken.
func TestSnapshotTriggerCountsFailures(t *testing.T) {
	panicked := marker.Define1("stest_frfail:panic", marker.String("why"))
	s := newSession(t, session.WithMode(session.Overwrite))
	boom := errors.New("disk full")
	done := make(chan struct{}, 1)
	trig, err := s.SnapshotOn("stest_frfail:panic", time.Nanosecond, func() error {
		defer func() { done <- struct{}{} }()
		return boom
	})
	if err != nil {
		t.Fatal(err)
	}
	panicked.Fire("x")
	<-done
	trig.Close()
	if st := trig.Stats(); st.Fired != 1 || st.Taken != 0 || st.Failed != 1 || !errors.Is(st.LastError, boom) {
		t.Errorf("trigger stats after a failed snapshot %+v, want taken 0, failed 1", st)
	}
}

// TestStartFromEnvTracesABatchProgram runs this test binary as a short
// batch program traced from its environment, and reads its trace.
func TestStartFromEnvTracesABatchProgram(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBatchProgram$")
	cmd.Env = append(os.Environ(), "TRACEMARK_TEST_BATCH=1",
		session.EnvEnable+"=stest_batch:*, stest_http:request_done", session.EnvOutput+"="+dir,
		session.EnvFilter+"=status != 0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("batch program: %v\n%s", err, out)
	}
	lines, _ := babeltrace(t, dir)
	evs := parseBabeltraceNoCycles(t, lines)
	if len(evs) != 100 {
		t.Fatalf("trace has %d events, want 100 (every status != 0)", len(evs))
	}
	if evs[99] != "stest_batch:step" || !strings.Contains(lines[99], "status = 100") {
		t.Errorf("last event %q", lines[99])
	}
}

func parseBabeltraceNoCycles(t *testing.T, lines []string) []string {
	var names []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 4 {
			t.Fatalf("line %q", l)
		}
		names = append(names, strings.TrimSuffix(f[3], ":"))
	}
	return names
}

// TestHelperBatchProgram is the batch program of the test above.
func TestHelperBatchProgram(t *testing.T) {
	if os.Getenv("TRACEMARK_TEST_BATCH") != "1" {
		t.Skip("helper process")
	}
	step := marker.Define1("stest_batch:step", marker.Int("status"))
	tr, err := session.StartFromEnv()
	if err != nil || tr == nil {
		t.Fatalf("StartFromEnv: %v, %v", tr, err)
	}
	defer tr.Close()
	for i := range 101 {
		step.Fire(i) // status 0 is filtered out
	}
}

func TestStartFromEnvIsOffWithoutTheVariable(t *testing.T) {
	t.Setenv(session.EnvEnable, "")
	tr, err := session.StartFromEnv()
	if tr != nil || err != nil {
		t.Errorf("got %v, %v", tr, err)
	}
	if tr.Close() != nil {
		t.Error("nil Close")
	}
	t.Setenv(session.EnvEnable, "x:*")
	t.Setenv(session.EnvMode, "sideways")
	if _, err := session.StartFromEnv(); err == nil || !strings.Contains(err.Error(), "TRACEMARK_MODE") {
		t.Errorf("bad mode: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"4096", 4096, true}, {"64K", 64 << 10, true}, {"4m", 4 << 20, true}, {"1G", 1 << 30, true},
		{"2MiB", 2 << 20, true}, {"", 0, false}, {"18014398509482000K", 0, false}, {"-1", 0, false}, {"1T", 0, false}, {"K", 0, false},
	}
	for _, tt := range tests {
		got, err := session.ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v", tt.in, got, err)
		}
	}
}
