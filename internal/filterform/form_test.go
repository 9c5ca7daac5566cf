package filterform

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/marker"
)

var testFields = []marker.FieldInfo{
	{Name: "status", Kind: marker.KindInt64}, {Name: "path", Kind: marker.KindString},
	{Name: "ok", Kind: marker.KindBool}, {Name: "body", Kind: marker.KindBytes},
	{Name: "lat", Kind: marker.KindDuration}, {Name: "n", Kind: marker.KindUint32},
	{Name: "r", Kind: marker.KindFloat64},
}

var testMarker = func() *marker.Dynamic {
	d, err := marker.DefineDynamic("filterformtest:event", testFields)
	if err != nil {
		panic(err)
	}
	return d
}()

func field(name string) *Node { return &Node{Op: "field", Field: name} }
func str(s string) *Node      { return &Node{Op: "string", Str: s} }
func call(op string, args ...*Node) *Node {
	return &Node{Op: op, Args: args}
}

// TestCostBound checks the bound of forms against the model: what each
// node is charged, searches by the needle's length, strings at most
// maxString long, and a needle that is a field charged as long as it may
// be.
func TestCostBound(t *testing.T) {
	contains := func(s string) *Node { return call("contains", field("path"), str(s)) }
	list := &Node{Op: "list"}
	for range 665 {
		list.Args = append(list.Args, &Node{Op: "int", Int: 1})
	}
	for _, tc := range []struct {
		name      string
		form      *Node
		maxString int
		units     uint64
	}{
		// A comparison: 3 ns, one unit.
		{"compare", call("ge", field("status"), &Node{Op: "int", Int: 500}), 1024, 1},
		// Three 13-byte searches of 1 KiB: 0.8 ns per byte each, and 5
		// nodes of 3 ns.
		{"searches", call("or", call("or", contains("/api/v1/users"), contains("/api/v2/users")), contains("/api/v3/users")), 1024, 25},
		// The same with strings cut to 64 bytes.
		{"short strings", call("or", call("or", contains("/api/v1/users"), contains("/api/v2/users")), contains("/api/v3/users")), 64, 2},
		// A field as the needle may be 1 KiB long: Rabin-Karp, 4 ns per byte.
		{"field needle", call("contains", field("path"), field("path")), 1024, 42},
		// 256 additions of 257 fields, compared: BenchmarkNodes measured
		// about 1.3 µs.
		{"sum", call("eq", balanced(256, "add", func() *Node { return field("status") }), &Node{Op: "int"}), 1024, 16},
		// Arithmetic: 4 ns for +, 6 for *, 2 per operand read.
		{"arith", call("eq", call("mul", call("add", field("status"), field("status")), field("status")), &Node{Op: "int"}), 1024, 1},
		// 665 constants: 3 ns each, the most the budget takes.
		{"in", call("in", field("status"), list), 1024, 20},
		// A regular expression: 10 ns per byte of input and instruction
		// of the compiled pattern (7 for ^/api).
		{"regex", call("matches", field("path"), str("^/api")), 1024, 718},
		// Seven characters, a thousand instructions: too much even over
		// 8 bytes.
		{"counted repetition", call("matches", field("path"), str("a{1000}")), 8, 902},
		// size of a string counts runes: 1.5 ns per byte.
		{"size", call("gt", call("size", field("path")), &Node{Op: "int", Int: 3}), 1024, 16},
		{"size of bytes", call("gt", call("size", field("body")), &Node{Op: "int", Int: 3}), 1024, 1},
	} {
		c, err := Compile(tc.form, testFields, tc.maxString)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := Units(c.Ns); got != tc.units {
			t.Errorf("%s: %d units (%.1f ns), want %d", tc.name, got, c.Ns, tc.units)
		}
	}
	if Units(math.Inf(1)) != math.MaxUint64 || CostString(Units(math.Inf(1))) != "unbounded" {
		t.Error("an infinite bound does not saturate")
	}
}

// TestRegexRunsUnpinned checks that a form with a regular expression,
// which may allocate, says so.
func TestRegexRunsUnpinned(t *testing.T) {
	c, err := Compile(call("matches", field("path"), str("^a")), testFields, 4)
	if err != nil || !c.Allocates {
		t.Fatalf("compiled %+v, %v: want Allocates", c, err)
	}
	c, err = Compile(call("contains", field("path"), str("a")), testFields, 4)
	if err != nil || c.Allocates {
		t.Fatalf("compiled %+v, %v: want no Allocates", c, err)
	}
}

// TestEncodeDecode checks that a form survives the encoding, and that
// Encode refuses what Decode would.
func TestEncodeDecode(t *testing.T) {
	form := call("and", call("ge", field("status"), &Node{Op: "int", Int: -5}),
		call("in", field("n"), &Node{Op: "list", Args: []*Node{{Op: "uint", Uint: math.MaxUint64}}}))
	b, err := Encode(form)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := Encode(back)
	if string(b) != string(b2) {
		t.Errorf("round trip changed the form:\n%s\n%s", b, b2)
	}
	if _, err := Encode(call("not")); !errors.Is(err, ErrFilter) {
		t.Errorf("Encode of a malformed form: %v", err)
	}
}

// TestDecodeRefusesHostileForms checks Decode's errors.
func TestDecodeRefusesHostileForms(t *testing.T) {
	for _, tc := range []struct{ form, want string }{
		{`{"v":1,"expr":{"op":"not","args":[{"op":"bool"}]}} {}`, "data after the form"},
		{`{"v":1,"expr":{"op":"double","double":1e999}}`, "malformed checked form"},
		{`{"v":1,"expr":{"op":"int","int":9223372036854775808}}`, "malformed checked form"},
		{`{"v":1,"expr":{"op":"uint","uint":-1}}`, "malformed checked form"},
		{`{"v":1,"expr":{"op":"field"}}`, "a field without a name"},
		{`{"v":1,"expr":{"op":"list","args":[]}}`, "a list outside the right operand of in"},
		{`{"v":1,"expr":{"op":"in","args":[{"op":"field","field":"status"},{"op":"list","args":[{"op":"int","args":[{"op":"double"}]}]}]}}`, "list elements must be constants"},
		{`{"v":1,"expr":{"op":"int","args":[{"op":"int"},{"op":"int"}]}}`, "int takes 0 operands, not 2"},
		{`[]`, "malformed checked form"},
		{``, "malformed checked form"},
	} {
		_, err := Decode([]byte(tc.form))
		if !errors.Is(err, ErrFilter) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.form, err, tc.want)
		}
	}
}

// FuzzDecodeCompileEval feeds arbitrary bytes to Decode, compiles what it
// accepts and evaluates that on events: errors are fine, panics are not.
func FuzzDecodeCompileEval(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"expr":{"op":"ge","args":[{"op":"field","field":"status"},{"op":"int","int":500}]}}`,
		`{"v":1,"expr":{"op":"and","args":[{"op":"contains","args":[{"op":"field","field":"path"},{"op":"string","str":"a"}]},{"op":"field","field":"ok"}]}}`,
		`{"v":1,"expr":{"op":"in","args":[{"op":"field","field":"lat"},{"op":"list","args":[{"op":"duration","int":5}]}]}}`,
		`{"v":1,"expr":{"op":"lt","args":[{"op":"int","args":[{"op":"field","field":"r"}]},{"op":"mod","args":[{"op":"field","field":"status"},{"op":"int"}]}]}}`,
		`{"v":1,"expr":{"op":"cond","args":[{"op":"field","field":"ok"},{"op":"matches","args":[{"op":"field","field":"path"},{"op":"string","str":"^(a|b)+$"}]},{"op":"eq","args":[{"op":"field","field":"body"},{"op":"bytes","bytes":"AAE="}]}]}}`,
		`{"v":1,"expr":{"op":"gt","args":[{"op":"size","args":[{"op":"field","field":"path"}]},{"op":"neg","args":[{"op":"uint","args":[{"op":"field","field":"n"}]}]}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		form, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("error %v does not wrap ErrFilter", err)
			}
			return
		}
		c, err := Compile(form, testFields, 8)
		if err != nil {
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("error %v does not wrap ErrFilter", err)
			}
			return
		}
		if c.Ns < 0 || math.IsNaN(c.Ns) {
			t.Fatalf("cost bound %v", c.Ns)
		}
		var panicked any
		p, _ := marker.Register("filterformtest:event", func(e *marker.Event) {
			defer func() {
				if r := recover(); r != nil {
					panicked = r
				}
			}()
			c.Pred(e)
		})
		defer p.Unregister()
		for _, st := range []int64{0, -1, math.MinInt64, math.MaxInt64} {
			testMarker.Fire(marker.IntValue(marker.KindInt64, st), marker.StringValue("héllo, world"),
				marker.BoolValue(st == 0), marker.BytesValue([]byte{0, 1}), marker.IntValue(marker.KindDuration, st),
				marker.UintValue(marker.KindUint32, uint64(st)), marker.Float64Value(float64(st)/3))
		}
		if panicked != nil {
			t.Fatalf("%s panicked: %v", b, panicked)
		}
	})
}

// A long name in an error is shortened at a character boundary: a cut
// through "é" would print a stray byte in the middle of the message.
func TestErrorShortensAtACharacter(t *testing.T) {
	name := strings.Repeat("a", 39) + strings.Repeat("é", 10)
	_, err := Compile(&Node{Op: "field", Field: name}, testFields, 64)
	if !errors.Is(err, ErrFilter) {
		t.Fatalf("Compile of an unknown field: %v, want ErrFilter", err)
	}
	if want := `no field "` + strings.Repeat("a", 39) + `…"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}
