package jsonl_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/internal/tracetest"
	"github.com/tracemark/tracemark/format/jsonl"
)

func convert(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	tracetest.Write(t, dir)
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	w := jsonl.NewWriter(&out)
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

// TestGolden pins the exact text of a few lines: field order and number
// formatting are part of the stable format.
func TestGolden(t *testing.T) {
	lines := strings.Split(string(convert(t)), "\n")
	want := map[int]string{
		2:  `{"ts_ns":1700000000000000120,"time":"2023-11-14T22:13:20.000000120Z","rel_ns":20,"stream":0,"cpu":0,"event":"ints:unsigned","provider":"ints","fields":{"a":255,"b":65535,"c":4294967295,"d":18446744073709551615}}`,
		7:  `{"ts_ns":1700000000000000160,"time":"2023-11-14T22:13:20.000000160Z","rel_ns":60,"stream":1,"cpu":1,"lost_events":12,"lost_packets":1,"end_ts_ns":1700000000000000250,"end_time":"2023-11-14T22:13:20.000000250Z"}`,
		8:  `{"ts_ns":1700000000000000165,"time":"2023-11-14T22:13:20.000000165Z","rel_ns":65,"stream":5,"cpu":5,"event":"floats","provider":"floats","fields":{"x":"NaN","y":1e+300}}`,
		11: `{"ts_ns":1700000000000000180,"time":"2023-11-14T22:13:20.000000180Z","rel_ns":80,"stream":1,"cpu":1,"event":"http:request","provider":"http","fields":{"method":"","path":"/ap","body":"","status":0},"truncated":["path","body"]}`,
		12: `{"ts_ns":1700000000000000190,"time":"2023-11-14T22:13:20.000000190Z","rel_ns":90,"stream":1,"cpu":1,"event":"http:empty","provider":"http","fields":{}}`,
	}
	if len(lines) != 15 || lines[14] != "" {
		t.Fatalf("got %d lines, want 14 and a final newline", len(lines)-1)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], w)
		}
	}
}

// line is a line decoded with numbers kept as json.Number.
type line map[string]any

func decode(t *testing.T, data []byte) []line {
	t.Helper()
	var out []line
	for i, l := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		d := json.NewDecoder(bytes.NewReader(l))
		d.UseNumber()
		var m line
		if err := d.Decode(&m); err != nil {
			t.Fatalf("line %d: %v\n%s", i+1, err, l)
		}
		if d.More() {
			t.Fatalf("line %d holds more than one value", i+1)
		}
		out = append(out, m)
	}
	return out
}

func num(s string) json.Number { return json.Number(s) }

// TestValues decodes every line with encoding/json and checks every
// member's exact value.
func TestValues(t *testing.T) {
	lines := decode(t, convert(t))
	ev := func(ts, stream int, name, provider string, fields map[string]any) line {
		l := line{
			"ts_ns": num(strconv.FormatInt(tracetest.Origin+int64(ts), 10)), "time": "2023-11-14T22:13:20.000000" + strconv.Itoa(ts) + "Z",
			"rel_ns": num(strconv.Itoa(ts - 100)), "stream": num(strconv.Itoa(stream)), "cpu": num(strconv.Itoa(stream)),
			"event": name, "provider": provider, "fields": fields,
		}
		return l
	}
	notice := func(ts, stream, lost, packets, end int) line {
		return line{
			"ts_ns": num(strconv.FormatInt(tracetest.Origin+int64(ts), 10)), "time": "2023-11-14T22:13:20.000000" + strconv.Itoa(ts) + "Z",
			"rel_ns": num(strconv.Itoa(ts - 100)), "stream": num(strconv.Itoa(stream)), "cpu": num(strconv.Itoa(stream)),
			"lost_events": num(strconv.Itoa(lost)), "lost_packets": num(strconv.Itoa(packets)),
			"end_ts_ns": num(strconv.FormatInt(tracetest.Origin+int64(end), 10)), "end_time": "2023-11-14T22:13:20.000000" + strconv.Itoa(end) + "Z",
		}
	}
	truncated := ev(180, 1, "http:request", "http", map[string]any{"method": "", "path": "/ap", "body": "", "status": num("0")})
	truncated["truncated"] = []any{"path", "body"}
	want := []line{
		ev(100, 0, "ints:signed", "ints", map[string]any{"a": num("-128"), "b": num("-32768"), "c": num("-2147483648"), "d": num("-9223372036854775808")}),
		ev(110, 1, "ints:signed", "ints", map[string]any{"a": num("127"), "b": num("32767"), "c": num("2147483647"), "d": num("9223372036854775807")}),
		ev(120, 0, "ints:unsigned", "ints", map[string]any{"a": num("255"), "b": num("65535"), "c": num("4294967295"), "d": num("18446744073709551615")}),
		notice(130, 5, 3, 0, 300),
		ev(130, 5, "ints:unsigned", "ints", map[string]any{"a": num("0"), "b": num("1"), "c": num("2"), "d": num("3")}),
		ev(140, 0, "floats", "floats", map[string]any{"x": num("0.1"), "y": num("-0.25")}),
		ev(150, 1, "floats", "floats", map[string]any{"x": "Infinity", "y": "-Infinity"}),
		notice(160, 1, 12, 1, 250),
		ev(165, 5, "floats", "floats", map[string]any{"x": "NaN", "y": num("1e+300")}),
		ev(170, 0, "http:request", "http", map[string]any{"method": "GET", "path": "/héllo/世界?q=\"x\"\\", "body": "0001ff", "status": num("200")}),
		ev(175, 5, `odd "name" \ é`, `odd "name" \ é`, map[string]any{"string": "tab\there\nnl\x01\ufffd\u2028", "event": "6869"}),
		truncated,
		ev(190, 1, "http:empty", "http", map[string]any{}),
		ev(200, 5, "floats", "floats", map[string]any{"x": num("-0.0"), "y": num("2.0")}),
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(lines[i], want[i]) {
			t.Errorf("line %d:\n got %v\nwant %v", i+1, lines[i], want[i])
		}
	}
}

// TestTypedDecode decodes into Go types the way a consumer would: the
// extreme integers and the float encodings come back exactly.
func TestTypedDecode(t *testing.T) {
	var got []struct {
		TS     int64           `json:"ts_ns"`
		Event  string          `json:"event"`
		Fields json.RawMessage `json:"fields"`
	}
	for _, l := range bytes.Split(bytes.TrimSpace(convert(t)), []byte("\n")) {
		got = append(got, struct {
			TS     int64           `json:"ts_ns"`
			Event  string          `json:"event"`
			Fields json.RawMessage `json:"fields"`
		}{})
		if err := json.Unmarshal(l, &got[len(got)-1]); err != nil {
			t.Fatal(err)
		}
	}
	var u struct{ A, B, C, D uint64 }
	if err := json.Unmarshal(got[2].Fields, &u); err != nil || u.D != math.MaxUint64 || u.C != math.MaxUint32 {
		t.Errorf("unsigned fields %+v, %v", u, err)
	}
	var s struct{ D int64 }
	if err := json.Unmarshal(got[0].Fields, &s); err != nil || s.D != math.MinInt64 {
		t.Errorf("signed fields %+v, %v", s, err)
	}
	var f struct {
		X json.Number
		Y float64
	}
	if err := json.Unmarshal(got[13].Fields, &f); err != nil || !math.Signbit(must(strconv.ParseFloat(f.X.String(), 64))) || f.Y != 2 {
		t.Errorf("floats %+v, %v", f, err)
	}
	var special struct{ X, Y string }
	if err := json.Unmarshal(got[6].Fields, &special); err != nil {
		t.Fatal(err)
	}
	if x, y := must(strconv.ParseFloat(special.X, 64)), must(strconv.ParseFloat(special.Y, 64)); !math.IsInf(x, 1) || !math.IsInf(y, -1) {
		t.Errorf("infinities %q %q parse as %v %v", special.X, special.Y, x, y)
	}
	if got[9].TS != tracetest.Origin+170 {
		t.Errorf("ts_ns %d, want %d", got[9].TS, int64(tracetest.Origin+170))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
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
		{ctf.FloatValue(math.Inf(1)), 64, `"Infinity"`},
		{ctf.StringValue(""), 0, `""`},
		{ctf.StringValue("\x00é"), 0, `"\u0000é"`},
		{ctf.BytesValue(nil), 0, `""`},
		{ctf.BytesValue([]byte{0xde, 0xad}), 0, `"dead"`},
		{ctf.Value{}, 0, "null"},
	}
	for _, tt := range tests {
		if got := string(jsonl.AppendValue(nil, tt.v, tt.bits)); got != tt.want {
			t.Errorf("AppendValue(%v) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

type failWriter struct{}

var errDisk = errors.New("disk full")

func (failWriter) Write(p []byte) (int, error) { return 0, errDisk }

func TestWriteErrorIsSticky(t *testing.T) {
	w := jsonl.NewWriter(failWriter{})
	ev := &ctf.Event{Class: &tracetest.BenchClass, Fields: []ctf.Value{ctf.IntValue(1), ctf.IntValue(2), ctf.StringValue(strings.Repeat("x", 1000))}}
	var err error
	for i := 0; err == nil && i < 1000; i++ {
		err = w.WriteEvent(ev)
	}
	if !errors.Is(err, errDisk) || !errors.Is(w.Close(), errDisk) {
		t.Fatalf("WriteEvent error %v, want %v", err, errDisk)
	}
}

func TestNoAllocs(t *testing.T) {
	w := jsonl.NewWriter(discard{})
	ev := &ctf.Event{Class: &tracetest.Classes[3], Time: 1700000000_000000000, Truncated: 2, Fields: []ctf.Value{
		ctf.StringValue("GET"), ctf.StringValue("/path"), ctf.BytesValue([]byte{1, 2}), ctf.UintValue(200)}}
	w.WriteEvent(ev)
	notice := &ctf.Event{Time: 1700000000_000000000, EndTime: 1700000001_000000000, Discarded: 3}
	allocs := testing.AllocsPerRun(1000, func() {
		ev.Time++
		w.WriteEvent(ev)
		w.WriteEvent(notice)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per event, want 0", allocs)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
