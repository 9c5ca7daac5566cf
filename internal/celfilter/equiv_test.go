package celfilter

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/internal/filterform"
	"github.com/tracemark/tracemark/marker"
)

// The checked form must give CEL's answers. These tests compile each
// expression with CEL, take its checked form through the wire encoding
// (Encode, Decode) and compile it natively, and compare the two on many
// events: the form's answer against the CEL program's.

var eqFields = []marker.FieldInfo{
	{Name: "i", Kind: marker.KindInt64}, {Name: "u", Kind: marker.KindUint64},
	{Name: "d", Kind: marker.KindFloat64}, {Name: "s", Kind: marker.KindString},
	{Name: "b", Kind: marker.KindBool}, {Name: "l", Kind: marker.KindDuration},
	{Name: "y", Kind: marker.KindBytes}, {Name: "n", Kind: marker.KindInt8},
}

var eqMarker = func() *marker.Dynamic {
	d, err := marker.DefineDynamic("celfiltertest:event", eqFields)
	if err != nil {
		panic(err)
	}
	return d
}()

var (
	eqInts    = []int64{0, 1, -1, 2, 3, 7, 100, 499, 500, 1000, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	eqUints   = []uint64{0, 1, 2, 5, 1000, 5001, math.MaxUint64, math.MaxInt64, math.MaxInt64 + 1}
	eqDoubles = []float64{0, math.Copysign(0, -1), 0.5, -0.5, 1, 2.5, 1e10, -1e300, 9.3e18, -9.3e18, 1.8e19, math.NaN(), math.Inf(1), math.Inf(-1)}
	eqStrings = []string{"", "a", "ab", "/api", "/api/users", "héllo", "ééé", "/static/x.png", "user", "\xff\xfe"}
	eqBytes   = [][]byte{nil, {}, []byte("a"), []byte("ab"), []byte("abcdef"), {0, 255}}
	eqDurs    = []time.Duration{0, 1, time.Millisecond, 20 * time.Millisecond, time.Second, -time.Second, math.MaxInt64, math.MinInt64}
)

// eqEvent returns the values of a random event.
func eqEvent(rng *rand.Rand) []marker.Value {
	pick := func(n int) int { return rng.IntN(n) }
	i := eqInts[pick(len(eqInts))]
	if pick(4) == 0 {
		i = rng.Int64N(2000) - 1000
	}
	return []marker.Value{
		marker.IntValue(marker.KindInt64, i),
		marker.UintValue(marker.KindUint64, eqUints[pick(len(eqUints))]),
		marker.Float64Value(eqDoubles[pick(len(eqDoubles))]),
		marker.StringValue(eqStrings[pick(len(eqStrings))]),
		marker.BoolValue(pick(2) == 0),
		marker.IntValue(marker.KindDuration, int64(eqDurs[pick(len(eqDurs))])),
		marker.BytesValue(eqBytes[pick(len(eqBytes))]),
		marker.IntValue(marker.KindInt8, int64(pick(256)-128)),
	}
}

// compare compiles src both ways and fires events; it returns an error on
// the first disagreement, whether the expression has a checked form, and
// CEL's compile error if any.
func compare(src string, maxString int, events [][]marker.Value) (native bool, compileErr, err error) {
	f, cerr := Compile(src, "celfiltertest:event", eqFields, maxString, 0)
	if cerr != nil {
		return false, cerr, nil
	}
	if f.Form == nil {
		return false, nil, nil
	}
	b, err := filterform.Encode(f.Form)
	if err != nil {
		return true, nil, fmt.Errorf("%s: encode: %v", src, err)
	}
	form, err := filterform.Decode(b)
	if err != nil {
		return true, nil, fmt.Errorf("%s: decode %s: %v", src, b, err)
	}
	c, err := filterform.Compile(form, eqFields, maxString)
	if err != nil {
		return true, nil, fmt.Errorf("%s: compile %s: %v", src, b, err)
	}
	var bad error
	p, _ := marker.Register("celfiltertest:event", func(e *marker.Event) {
		if bad != nil {
			return
		}
		defer func() {
			if r := recover(); r != nil {
				bad = fmt.Errorf("%s: panic: %v", src, r)
			}
		}()
		want := f.Eval(e)
		if want == filterform.OverCost {
			return
		}
		if got := c.Pred(e); got != (want == filterform.Accepted) {
			bad = fmt.Errorf("%s (cap %d): form says %v, CEL %v, on %s", src, maxString, got, want == filterform.Accepted, describe(e))
		}
	})
	defer p.Unregister()
	for _, ev := range events {
		if err := eqMarker.Fire(ev...); err != nil {
			return true, nil, err
		}
	}
	return true, nil, bad
}

func describe(e *marker.Event) string {
	var parts []string
	for j := range e.NumFields() {
		var x any
		v := e.Field(j)
		switch k := v.Kind(); {
		case k == marker.KindDuration:
			x = v.Duration()
		case k.Signed():
			x = v.Int()
		case k.Unsigned():
			x = v.Uint()
		case k.Float():
			x = v.Float()
		case k == marker.KindBool:
			x = v.Bool()
		case k == marker.KindString:
			x = fmt.Sprintf("%q", v.Str())
		case k == marker.KindBytes:
			x = fmt.Sprintf("%x", v.Bytes())
		}
		parts = append(parts, fmt.Sprintf("%s=%v", eqFields[j].Name, x))
	}
	return strings.Join(parts, " ")
}

func events(n int, seed uint64) [][]marker.Value {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([][]marker.Value, n)
	for j := range out {
		out[j] = eqEvent(rng)
	}
	return out
}

// formExprs have a checked form; each is compared with CEL.
var formExprs = []string{
	`i >= 500`, `500 <= i`, `i == 404 || i < 0`, `!(i != 200)`, `n > 3`, `n in [1, -1, 100]`,
	`u > 1000u && u <= 5000u`, `u in [0u, 5001u]`, `d < 0.5 || d >= 2.0`, `d == 1.0`, `d != d`,
	`d in [0.5, 1.0, 0.0]`, `d / -0.0 > 0.0`, `d in [-0.0]`, `-d > 0.25`, `-i < 0`, `i % 3 == 1`, `i / 7 > 2`, `i * i > 100`,
	`i + 1 > i`, `i - 1 < i`, `u - 1u > 5u`, `u + u >= u`, `u * 2u > u`, `u / 0u == 0u || b`,
	`u % 3u == 1u`, `d * 2.0 > d`, `d / 0.0 > 1.0`, `d + d == 2.0 * d`, `d - 1.0 < d`,
	`1 / (i - i) > 0 || b`, `b || 1 / (i - i) > 0`, `1 / (i - i) > 0 && !b`, `!(1 / (i - i) > 0)`,
	`i + 9223372036854775807 > 0 && b`, `-i > 0 || i == 0`,
	`s.startsWith("/api") && !s.endsWith(".png")`, `s.contains("user")`, `s.contains("")`,
	`s == "/api/users" || s > "/z"`, `s < "b"`, `s <= s`, `s.startsWith(s)`, `"/api/users".startsWith(s)`,
	`"xhéllox".contains(s)`, `s in ["/api", "", "héllo"]`, `size(s) > 3`, `s.size() <= 2`, `7 == size(s)`,
	`size(y) == 2`, `y == b"ab"`, `y < b"b"`, `y in [b"a", b""]`, `y >= y`,
	`b`, `b == false && true`, `b < true`, `b in [true]`, `!b`, `b ? i > 0 : i < 0`,
	`(i > 0 ? i : -i) > 5`, `(b ? u : 1u) > 0u`, `(b ? d : 1.0) > 0.5`, `(b ? l : 1s) > 500ms`,
	`(1 / (i - i) > 0 ? true : b)`,
	`l > duration("100ms")`, `duration("1s") >= l`, `l > 20ms`, `l + 1s > 2s`, `l - 1s < 0s`,
	`l in [1s, 20ms, 0s]`, `l == 1ns`,
	`int(u) > 5`, `int(d) > 3`, `int(d) < 0`, `uint(i) < 5u`, `uint(d) > 1u`, `double(u) > 1e10`,
	`double(i) / 2.0 > 140.5`, `int(i) == i`, `uint(u) == u`, `double(d) == d`, `double(n) < 0.0`,
	`s.matches("^/api")`, `s.matches("é+")`, `matches(s, "a|b")`,
	`i >= 200 && i < 300 || i >= 500 && i < 600 || s.startsWith("/api") && b`,
}

// TestFormAgreesWithCEL compares the checked form with CEL on every
// expression of formExprs and its negation (an error and false both
// reject an event, but their negations differ), with strings cut to 1024
// and to 4 bytes (both see the same cut strings).
func TestFormAgreesWithCEL(t *testing.T) {
	evs := events(3000, 1)
	var all []string
	for _, src := range formExprs {
		all = append(all, src, "!("+src+")")
	}
	for _, src := range all {
		for _, maxString := range []int{1024, 4} {
			native, cerr, err := compare(src, maxString, evs)
			if cerr != nil {
				if maxString == 1024 && strings.Contains(src, "matches") {
					continue // a regular expression over a 1 KiB string is over budget
				}
				t.Errorf("%s: %v", src, cerr)
				continue
			}
			if !native {
				t.Errorf("%s: no checked form", src)
			}
			if err != nil {
				t.Error(err)
			}
		}
	}
}

// TestUnsupportedNamesTheConstruct checks that Check refuses what the
// checked form cannot express, saying what.
func TestUnsupportedNamesTheConstruct(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`string(i) == "5"`, "string()"},
		{`s + s == "aa"`, "+ does not apply to (string, string)"},
		{`s.matches(s)`, "matches needs a constant pattern"},
		{`i in [i, 2]`, "in over a list of anything but constants"},
		{`duration(s) > 1s`, "duration() of anything but a string constant"},
		{`timestamp("2020-01-01T00:00:00Z") < timestamp("2021-01-01T00:00:00Z")`, "timestamp()"},
		{`l.getSeconds() > 1`, "getSeconds()"},
		{`(b ? s : "x") == "x"`, "?: choosing between strings or bytes is not supported"},
	} {
		_, err := Check(tc.src, "celfiltertest:event", eqFields, 4)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "not supported by the agent") {
			t.Errorf("%s: got %v, want an unsupported error naming %q", tc.src, err, tc.want)
		}
	}
}

// FuzzFormAgreesWithCEL generates well-typed expressions from the input
// and requires the checked form to agree with CEL on each one it
// compiles.
func FuzzFormAgreesWithCEL(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, uint64(1))
	f.Add([]byte{1, 4, 4, 2, 7, 7, 3, 9, 0, 1, 5, 3, 2}, uint64(2))
	f.Add([]byte{3, 3, 3, 4, 2, 8, 1, 6, 5, 0, 11, 12, 13, 14}, uint64(3))
	f.Add([]byte("an arbitrary seed of bytes for the generator"), uint64(4))
	evs := events(300, 9)
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		g := &gen{data: data}
		src := g.boolean(0)
		if seed&2 != 0 {
			src = "!(" + src + ")" // errors and false differ under a negation
		}
		maxString := []int{4, 1024}[seed%2]
		_, cerr, err := compare(src, maxString, evs)
		if cerr != nil {
			return // over budget, most likely; CEL's own errors are not ours
		}
		if err != nil {
			t.Fatal(err)
		}
	})
}

// gen generates CEL expressions of the marker's fields from bytes.
type gen struct {
	data []byte
	pos  int
}

func (g *gen) pick(n int) int {
	if g.pos >= len(g.data) {
		return 0
	}
	b := g.data[g.pos]
	g.pos++
	return int(b) % n
}

func (g *gen) oneOf(xs ...string) string { return xs[g.pick(len(xs))] }

func (g *gen) boolean(depth int) string {
	if depth > 3 {
		return g.oneOf("b", "true", "false", "i > 0", `s == ""`)
	}
	cmp := g.oneOf("==", "!=", "<", "<=", ">", ">=")
	switch g.pick(13) {
	case 0:
		return "(" + g.boolean(depth+1) + " && " + g.boolean(depth+1) + ")"
	case 1:
		return "(" + g.boolean(depth+1) + " || " + g.boolean(depth+1) + ")"
	case 2:
		return "!" + g.boolean(depth+1)
	case 3:
		return "(" + g.boolean(depth+1) + " ? " + g.boolean(depth+1) + " : " + g.boolean(depth+1) + ")"
	case 4:
		return g.integer(depth+1) + " " + cmp + " " + g.integer(depth+1)
	case 5:
		return g.unsigned(depth+1) + " " + cmp + " " + g.unsigned(depth+1)
	case 6:
		return g.double(depth+1) + " " + cmp + " " + g.double(depth+1)
	case 7:
		return g.str() + "." + g.oneOf("startsWith", "endsWith", "contains") + "(" + g.str() + ")"
	case 8:
		return g.integer(depth+1) + " in [" + g.oneOf("1", "-1, 0", "0, 3, 500", "9223372036854775807") + "]"
	case 9:
		return g.duration(depth+1) + " " + cmp + " " + g.duration(depth+1)
	case 10:
		return g.oneOf("y", `b"a"`, `b""`) + " " + cmp + " " + g.oneOf("y", `b"ab"`, `b"\xff"`)
	case 11:
		return g.str() + " " + cmp + " " + g.str()
	}
	return g.boolean(depth+1) + " " + cmp + " " + g.boolean(depth+1)
}

func (g *gen) integer(depth int) string {
	if depth > 4 {
		return g.oneOf("i", "n", "0", "1", "-1", "7", "9223372036854775807", "-9223372036854775807")
	}
	switch g.pick(9) {
	case 0, 1:
		return "(" + g.integer(depth+1) + " " + g.oneOf("+", "-", "*", "/", "%") + " " + g.integer(depth+1) + ")"
	case 2:
		return "-" + g.integer(depth+1)
	case 3:
		return "size(" + g.oneOf("s", "y") + ")"
	case 4:
		return "int(" + g.oneOf(g.unsigned(depth+1), g.double(depth+1)) + ")"
	case 5:
		return "(" + g.boolean(depth+1) + " ? " + g.integer(depth+1) + " : " + g.integer(depth+1) + ")"
	}
	return g.oneOf("i", "n", "0", "1", "-1", "500", "9223372036854775807", "-9223372036854775807")
}

func (g *gen) unsigned(depth int) string {
	if depth > 4 {
		return g.oneOf("u", "0u", "1u", "18446744073709551615u")
	}
	switch g.pick(6) {
	case 0, 1:
		return "(" + g.unsigned(depth+1) + " " + g.oneOf("+", "-", "*", "/", "%") + " " + g.unsigned(depth+1) + ")"
	case 2:
		return "uint(" + g.oneOf(g.integer(depth+1), g.double(depth+1)) + ")"
	}
	return g.oneOf("u", "0u", "1u", "5001u", "18446744073709551615u")
}

func (g *gen) double(depth int) string {
	if depth > 4 {
		return g.oneOf("d", "0.0", "0.5", "-1e300")
	}
	switch g.pick(6) {
	case 0, 1:
		return "(" + g.double(depth+1) + " " + g.oneOf("+", "-", "*", "/") + " " + g.double(depth+1) + ")"
	case 2:
		return "-" + g.double(depth+1)
	case 3:
		return "double(" + g.oneOf(g.integer(depth+1), g.unsigned(depth+1)) + ")"
	}
	return g.oneOf("d", "0.0", "2.5", "1e19", "-9.3e18")
}

func (g *gen) duration(depth int) string {
	if depth > 4 {
		return g.oneOf("l", "1s", "0s", "20ms")
	}
	switch g.pick(4) {
	case 0:
		return "(" + g.duration(depth+1) + " " + g.oneOf("+", "-") + " " + g.duration(depth+1) + ")"
	}
	return g.oneOf("l", "1ns", "-1s", `duration("2562047h")`)
}

func (g *gen) str() string { return g.oneOf("s", `""`, `"a"`, `"/api"`, `"é"`, `"héllo"`) }
