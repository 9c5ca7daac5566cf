package encode

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestProvider(t *testing.T) {
	tests := []struct{ name, want string }{
		{"http:request", "http"},
		{"http:request:done", "http"},
		{"floats", "floats"},
		{":x", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Provider(tt.name); got != tt.want {
			t.Errorf("Provider(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// quoteInputs are strings that exercise every escaping branch.
var quoteInputs = []string{
	"", "plain", `"quoted" \back\`, "tab\tnl\ncr\rbell\a\b\f\v", "\x00\x01\x1f\x7f",
	"héllo 世界 🎉", "\xff", "a\xc3", "\xed\xa0\x80", "\u2028\u2029", "\u00ad", "\U000e0001",
	"\xf4\x90\x80\x80", "ok\xe2\x82", strings.Repeat("x", 100) + "\n",
}

// randomString returns a string mixing ASCII, multi-byte runes and random
// bytes.
func randomString(r *rand.Rand) string {
	var b []byte
	for range r.IntN(12) {
		switch r.IntN(4) {
		case 0:
			b = append(b, byte(r.IntN(0x80)))
		case 1:
			b = utf8.AppendRune(b, rune(r.IntN(0x110000)))
		case 2:
			b = append(b, byte(r.IntN(256)))
		default:
			b = append(b, "é\u2028"[r.IntN(3):]...)
		}
	}
	return string(b)
}

func TestAppendQuoteMatchesStrconv(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	inputs := append([]string{}, quoteInputs...)
	for range 20000 {
		inputs = append(inputs, randomString(r))
	}
	for _, s := range inputs {
		want := strconv.Quote(s)
		if got := string(AppendQuote([]byte("x"), s)); got != "x"+want {
			t.Fatalf("AppendQuote(%q) = %s, want %s", s, got[1:], want)
		}
		if got := string(AppendQuote(nil, []byte(s))); got != want {
			t.Fatalf("AppendQuote([]byte(%q)) = %s, want %s", s, got, want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain é 世界", `"plain é 世界"`},
		{`"\`, `"\"\\"`},
		{"\n\r\t\b\f\x00\x1f\x7f", `"\n\r\t\b\f\u0000\u001f` + "\x7f\""},
		{"a\xffb", `"a\ufffdb"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"</script>", `"</script>"`},
	}
	for _, tt := range tests {
		if got := string(AppendJSONString(nil, tt.in)); got != tt.want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	// Any input gives valid JSON that decodes to the input with each
	// invalid byte replaced by U+FFFD, like a []rune conversion does.
	r := rand.New(rand.NewPCG(3, 4))
	inputs := append([]string{}, quoteInputs...)
	for range 20000 {
		inputs = append(inputs, randomString(r))
	}
	for _, s := range inputs {
		enc := AppendJSONString(nil, []byte(s))
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("AppendJSONString(%q) = %s: %v", s, enc, err)
		}
		if want := string([]rune(s)); got != want {
			t.Fatalf("AppendJSONString(%q) = %s decodes to %q, want %q", s, enc, got, want)
		}
		if strings.ContainsAny(string(enc), "\u2028\u2029") {
			t.Fatalf("AppendJSONString(%q) = %s contains U+2028 or U+2029", s, enc)
		}
	}
}

func TestAppendFloat(t *testing.T) {
	tests := []struct {
		v          float64
		bits       int
		text, json string
	}{
		{0, 64, "0.0", "0.0"},
		{math.Copysign(0, -1), 64, "-0.0", "-0.0"},
		{2, 64, "2.0", "2.0"},
		{-0.25, 64, "-0.25", "-0.25"},
		{float64(float32(0.1)), 32, "0.1", "0.1"},
		{float64(float32(0.1)), 64, "0.10000000149011612", "0.10000000149011612"},
		{123456789, 64, "123456789.0", "123456789.0"},
		{1e20, 64, "100000000000000000000.0", "100000000000000000000.0"},
		{1e21, 64, "1e+21", "1e+21"},
		{1e300, 64, "1e+300", "1e+300"},
		{1e-6, 64, "0.000001", "0.000001"},
		{1e-7, 64, "1e-7", "1e-7"},
		{-1.5e-10, 64, "-1.5e-10", "-1.5e-10"},
		{math.MaxFloat64, 64, "1.7976931348623157e+308", "1.7976931348623157e+308"},
		{math.SmallestNonzeroFloat64, 64, "5e-324", "5e-324"},
		{math.MaxFloat32, 32, "3.4028235e+38", "3.4028235e+38"},
		{math.NaN(), 64, "NaN", `"NaN"`},
		{math.Inf(1), 32, "+Inf", `"Infinity"`},
		{math.Inf(-1), 64, "-Inf", `"-Infinity"`},
	}
	for _, tt := range tests {
		if got := string(AppendFloat(nil, tt.v, tt.bits)); got != tt.text {
			t.Errorf("AppendFloat(%v, %d) = %s, want %s", tt.v, tt.bits, got, tt.text)
		}
		if got := string(AppendJSONFloat(nil, tt.v, tt.bits)); got != tt.json {
			t.Errorf("AppendJSONFloat(%v, %d) = %s, want %s", tt.v, tt.bits, got, tt.json)
		}
	}
	// Random values read back exactly, as valid JSON numbers.
	r := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		v := math.Float64frombits(r.Uint64())
		bits := 64
		if r.IntN(2) == 0 {
			v, bits = float64(math.Float32frombits(r.Uint32())), 32
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		s := AppendJSONFloat(nil, v, bits)
		var back float64
		if err := json.Unmarshal(s, &back); err != nil {
			t.Fatalf("AppendJSONFloat(%v) = %s: %v", v, s, err)
		}
		if bits == 32 {
			back = float64(float32(back))
		}
		if back != v || math.Signbit(back) != math.Signbit(v) {
			t.Fatalf("AppendJSONFloat(%v, %d) = %s reads back as %v", v, bits, s, back)
		}
		if p, _ := strconv.ParseFloat(string(AppendFloat(nil, v, bits)), bits); p != v {
			t.Fatalf("AppendFloat(%v, %d) reads back as %v", v, bits, p)
		}
	}
}

func TestAppendFixed(t *testing.T) {
	tests := []struct {
		ns    int64
		pad   int
		s, us string
	}{
		{0, 0, "0.000000000", "0.000"},
		{12345, 0, "0.000012345", "12.345"},
		{1, 6, "     0.000000001", "0.001"},
		{-1, 0, "-0.000000001", "-0.001"},
		{-1_500_000_000, 6, "    -1.500000000", "-1500000.000"},
		{1234567_000000001, 6, "1234567.000000001", "1234567000000.001"},
		{math.MinInt64, 0, "-9223372036.854775808", "-9223372036854775.808"},
		{math.MaxInt64, 0, "9223372036.854775807", "9223372036854775.807"},
	}
	for _, tt := range tests {
		if got := string(AppendSeconds(nil, tt.ns, tt.pad)); got != tt.s {
			t.Errorf("AppendSeconds(%d, %d) = %q, want %q", tt.ns, tt.pad, got, tt.s)
		}
		if got := string(AppendMicros(nil, tt.ns)); got != tt.us {
			t.Errorf("AppendMicros(%d) = %q, want %q", tt.ns, got, tt.us)
		}
	}
}

func TestClock(t *testing.T) {
	locs := []*time.Location{nil, time.UTC, time.FixedZone("", 2*3600+30*60), time.FixedZone("", -7*3600)}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		locs = append(locs, ny) // with daylight saving time changes
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, loc := range locs {
		c := Clock{Location: loc}
		ns := int64(1699999999_999999990) // crosses a second boundary
		for i := range 20000 {
			switch {
			case i%100 == 0:
				ns = r.Int64N(1<<62) - 1<<61 // anywhere, also before 1970
			case i%7 == 0:
				ns += r.Int64N(3600e9) // hours later
			default:
				ns += r.Int64N(3)
			}
			tl := loc
			if tl == nil {
				tl = time.UTC
			}
			want := time.Unix(0, ns).In(tl).Format(TimeLayout)
			if got := string(c.Append(nil, ns)); got != want {
				t.Fatalf("Clock{%v}.Append(%d) = %s, want %s", loc, ns, got, want)
			}
		}
	}
}

func TestNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 1024)
	str := []byte("héllo \"world\"\n\xff")
	var c Clock
	c.Append(buf, 1700000000_000000000)
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendJSONString(buf[:0], str)
		b = AppendQuote(b, str)
		b = AppendHex(b, str)
		b = AppendFloat(b, 0.1, 64)
		b = AppendJSONFloat(b, math.NaN(), 64)
		b = AppendSeconds(b, 123456789, 6)
		b = AppendMicros(b, 123456789)
		_ = c.Append(b, 1700000000_000000123)
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}
