package text_test

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/internal/tracetest"
	"github.com/tracemark/tracemark/format/text"
)

// convert writes the small test trace with opts.
func convert(t *testing.T, opts ...text.Option) string {
	t.Helper()
	dir := t.TempDir()
	tracetest.Write(t, dir)
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out strings.Builder
	w := text.NewWriter(&out, opts...)
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
	return out.String()
}

func checkLines(t *testing.T, got string, want []string) {
	t.Helper()
	lines := strings.SplitAfter(got, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i := range max(len(lines), len(want)) {
		var g, w string
		if i < len(lines) {
			g = lines[i]
		}
		if i < len(want) {
			w = want[i] + "\n"
		}
		if g != w {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, g, w)
		}
	}
}

func TestGolden(t *testing.T) {
	checkLines(t, convert(t), []string{
		`[2023-11-14T22:13:20.000000100Z] (+?.?????????) s0 cpu0 ints:signed: a=-128 b=-32768 c=-2147483648 d=-9223372036854775808`,
		`[2023-11-14T22:13:20.000000110Z] (+0.000000010) s1 cpu1 ints:signed: a=127 b=32767 c=2147483647 d=9223372036854775807`,
		`[2023-11-14T22:13:20.000000120Z] (+0.000000010) s0 cpu0 ints:unsigned: a=255 b=65535 c=4294967295 d=18446744073709551615`,
		`[2023-11-14T22:13:20.000000130Z] (+0.000000010) s5 cpu5 [lost 3 events on stream 5 until 2023-11-14T22:13:20.000000300Z]`,
		`[2023-11-14T22:13:20.000000130Z] (+0.000000000) s5 cpu5 ints:unsigned: a=0 b=1 c=2 d=3`,
		`[2023-11-14T22:13:20.000000140Z] (+0.000000010) s0 cpu0 floats: x=0.1 y=-0.25`,
		`[2023-11-14T22:13:20.000000150Z] (+0.000000010) s1 cpu1 floats: x=+Inf y=-Inf`,
		`[2023-11-14T22:13:20.000000160Z] (+0.000000010) s1 cpu1 [lost 12 events and 1 packet on stream 1 until 2023-11-14T22:13:20.000000250Z]`,
		`[2023-11-14T22:13:20.000000165Z] (+0.000000005) s5 cpu5 floats: x=NaN y=1e+300`,
		`[2023-11-14T22:13:20.000000170Z] (+0.000000005) s0 cpu0 http:request: method="GET" path="/héllo/世界?q=\"x\"\\" body=<0001ff> status=200`,
		`[2023-11-14T22:13:20.000000175Z] (+0.000000005) s5 cpu5 odd "name" \ é: string="tab\there\nnl\x01\xff\u2028" event=<6869>`,
		`[2023-11-14T22:13:20.000000180Z] (+0.000000005) s1 cpu1 http:request: method="" path="/ap"[truncated] body=<>[truncated] status=0`,
		`[2023-11-14T22:13:20.000000190Z] (+0.000000010) s1 cpu1 http:empty:`,
		`[2023-11-14T22:13:20.000000200Z] (+0.000000010) s5 cpu5 floats: x=-0.0 y=2.0`,
	})
}

func TestGoldenRelative(t *testing.T) {
	got := convert(t, text.WithRelative())
	lines := strings.Split(got, "\n")
	want := map[int]string{
		0:  `[     0.000000000] (+?.?????????) s0 cpu0 ints:signed: a=-128 b=-32768 c=-2147483648 d=-9223372036854775808`,
		3:  `[     0.000000030] (+0.000000010) s5 cpu5 [lost 3 events on stream 5 until 0.000000200]`,
		7:  `[     0.000000060] (+0.000000010) s1 cpu1 [lost 12 events and 1 packet on stream 1 until 0.000000150]`,
		13: `[     0.000000100] (+0.000000010) s5 cpu5 floats: x=-0.0 y=2.0`,
	}
	if len(lines) != 15 || lines[14] != "" {
		t.Fatalf("got %d lines, want 14 and a final newline:\n%s", len(lines)-1, got)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, lines[i], w)
		}
	}
}

func TestLocation(t *testing.T) {
	got := convert(t, text.WithLocation(time.FixedZone("", -(3*3600+30*60))))
	first, _, _ := strings.Cut(got, "\n")
	want := `[2023-11-14T18:43:20.000000100-03:30] (+?.?????????) s0 cpu0 ints:signed: a=-128 b=-32768 c=-2147483648 d=-9223372036854775808`
	if first != want {
		t.Errorf("got  %q\nwant %q", first, want)
	}
}

// TestNotices covers the wording of every kind of notice and delta signs.
func TestNotices(t *testing.T) {
	tests := []struct {
		name string
		ev   ctf.Event
		want string
	}{
		{"one event", ctf.Event{Stream: 2, CPU: 3, Time: 10, EndTime: 20, Discarded: 1},
			"[     0.000000010] (+0.000000010) s2 cpu3 [lost 1 event on stream 2 until 0.000000020]"},
		{"packets only", ctf.Event{Stream: 2, Time: 10, EndTime: 20, LostPackets: 2},
			"[     0.000000010] (+0.000000010) s2 cpu0 [lost 2 packets on stream 2 until 0.000000020]"},
		{"one of each", ctf.Event{Stream: 0, Time: 10, EndTime: 20, Discarded: 1, LostPackets: 1},
			"[     0.000000010] (+0.000000010) s0 cpu0 [lost 1 event and 1 packet on stream 0 until 0.000000020]"},
		{"earlier", ctf.Event{Stream: 0, Time: -5, EndTime: 20, Discarded: math.MaxUint64},
			"[    -0.000000005] (-0.000000005) s0 cpu0 [lost 18446744073709551615 events on stream 0 until 0.000000020]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			w := text.NewWriter(&out, text.WithRelative())
			w.WriteEvent(&ctf.Event{Class: &ctf.EventClass{Name: "start"}})
			w.WriteEvent(&tt.ev)
			w.Close()
			_, got, _ := strings.Cut(out.String(), "\n")
			if got != tt.want+"\n" {
				t.Errorf("got  %q\nwant %q", got, tt.want+"\n")
			}
		})
	}
}

func TestAppendValue(t *testing.T) {
	tests := []struct {
		v    ctf.Value
		bits int
		want string
	}{
		{ctf.IntValue(math.MinInt64), 64, "-9223372036854775808"},
		{ctf.UintValue(math.MaxUint64), 64, "18446744073709551615"},
		{ctf.FloatValue(float64(float32(3.14))), 32, "3.14"},
		{ctf.FloatValue(1e21), 64, "1e+21"},
		{ctf.FloatValue(math.NaN()), 32, "NaN"},
		{ctf.StringValue(""), 0, `""`},
		{ctf.StringValue("a\"b\\c\x00"), 0, `"a\"b\\c\x00"`},
		{ctf.BytesValue(nil), 0, "<>"},
		{ctf.BytesValue([]byte{0xde, 0xad, 0xbe, 0xef}), 0, "<deadbeef>"},
		{ctf.Value{}, 0, "?"},
	}
	for _, tt := range tests {
		if got := string(text.AppendValue(nil, tt.v, tt.bits)); got != tt.want {
			t.Errorf("AppendValue(%v) = %s, want %s", tt.v, got, tt.want)
		}
	}
	// Strings read back with strconv.Unquote.
	for _, s := range []string{"tab\there", "é\u2028\xff", `\"`} {
		q := string(text.AppendValue(nil, ctf.StringValue(s), 0))
		if back, err := strconv.Unquote(q); err != nil || back != s {
			t.Errorf("Unquote(%s) = %q, %v; want %q", q, back, err, s)
		}
	}
}

type failWriter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, errDisk
}

func TestWriteErrorIsSticky(t *testing.T) {
	fw := &failWriter{}
	w := text.NewWriter(fw)
	ev := &ctf.Event{Class: &tracetest.BenchClass, Fields: []ctf.Value{ctf.IntValue(1), ctf.IntValue(2), ctf.StringValue(strings.Repeat("x", 1000))}}
	var err error
	for i := 0; err == nil && i < 1000; i++ {
		err = w.WriteEvent(ev)
	}
	if !errors.Is(err, errDisk) {
		t.Fatalf("WriteEvent error %v, want %v", err, errDisk)
	}
	if err := w.WriteEvent(ev); !errors.Is(err, errDisk) {
		t.Errorf("WriteEvent after an error: %v", err)
	}
	if err := w.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close after an error: %v", err)
	}
	if fw.n != 1 {
		t.Errorf("%d writes after the failed one", fw.n-1)
	}
}

// TestNoAllocs checks that writing an event does not allocate once its
// class has been seen.
func TestNoAllocs(t *testing.T) {
	w := text.NewWriter(discard{})
	ev := &ctf.Event{Class: &tracetest.Classes[3], Time: 1700000000_000000000, Truncated: 2, Fields: []ctf.Value{
		ctf.StringValue("GET"), ctf.StringValue("/path"), ctf.BytesValue([]byte{1, 2}), ctf.UintValue(200)}}
	w.WriteEvent(ev)
	allocs := testing.AllocsPerRun(1000, func() {
		ev.Time++
		w.WriteEvent(ev)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per event, want 0", allocs)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
