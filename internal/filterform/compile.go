package filterform

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tracemark/tracemark/internal/clip"
	"github.com/tracemark/tracemark/marker"
)

// Pred is a compiled filter: it reports whether the filter accepts an
// event. An evaluation error rejects the event: a filter that cannot say
// yes says no.
type Pred func(e *marker.Event) bool

// Compiled is a form compiled for one marker's fields.
type Compiled struct {
	Pred Pred
	// Ns bounds what Pred takes on any event of the marker, in ns (see
	// cost.go), with string and byte fields cut to the maxString given
	// to Compile.
	Ns float64
	// Allocates is set if Pred may allocate (a regular expression), so
	// that it cannot run where the goroutine is pinned to its P.
	Allocates bool
}

// Compile type-checks the form root against fields, a marker's schema,
// with CEL's typing rules, and compiles it into closures over the event.
// String and byte fields are cut to maxString bytes before the filter
// sees them, as they are recorded, which bounds what string functions
// take. Compile does not refuse a form for its cost: [Compiled.Ns] is the
// bound, which the caller compares with its budget ([Budget]). root must
// have passed Decode's checks (Decode and Encode do them); errors wrap
// ErrFilter.
func Compile(root *Node, fields []marker.FieldInfo, maxString int) (*Compiled, error) {
	if err := check(root); err != nil {
		return nil, err
	}
	c := &compiler{fields: fields, max: max(maxString, 0)}
	v, err := c.node(root)
	if err != nil {
		return nil, err
	}
	if v.t != tBool {
		return nil, fmt.Errorf("%w: the expression is %s, not bool", ErrFilter, v.t)
	}
	b := v.b
	return &Compiled{Pred: func(e *marker.Event) bool { return b(e) == yes }, Ns: c.ns, Allocates: c.allocs}, nil
}

// typ is the CEL type of a value.
type typ uint8

const (
	tBool typ = iota + 1
	tInt
	tUint
	tDouble
	tString
	tBytes
	tDuration
	tList
)

func (t typ) String() string {
	switch t {
	case tBool:
		return "bool"
	case tInt:
		return "int"
	case tUint:
		return "uint"
	case tDouble:
		return "double"
	case tString:
		return "string"
	case tBytes:
		return "bytes"
	case tDuration:
		return "google.protobuf.Duration"
	case tList:
		return "list"
	}
	return "?"
}

// typeOf returns the CEL type of a field kind, or 0 if filters cannot
// read it.
func typeOf(k marker.Kind) typ {
	switch {
	case k == marker.KindDuration:
		return tDuration
	case k.Signed():
		return tInt
	case k.Unsigned():
		return tUint
	case k.Float():
		return tDouble
	case k == marker.KindBool:
		return tBool
	case k == marker.KindString:
		return tString
	case k == marker.KindBytes, k == marker.KindTraceID, k == marker.KindSpanID:
		return tBytes
	}
	return 0
}

// tri is a boolean outcome of CEL: false, true or an error.
type tri uint8

const (
	no tri = iota
	yes
	fail
)

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

type (
	ev       = *marker.Event
	boolFn   = func(ev) tri
	intFn    = func(ev) (int64, bool) // tInt and tDuration; false: an error
	uintFn   = func(ev) (uint64, bool)
	doubleFn = func(ev) (float64, bool)
	stringFn = func(ev) string
	bytesFn  = func(ev) []byte
)

// value is a compiled node: its type and the closure of that type.
type value struct {
	t typ
	b boolFn
	i intFn
	u uintFn
	d doubleFn
	s stringFn
	y bytesFn
	// n bounds the length of a string or bytes value, in bytes.
	n int
	// k is the node if it is a constant, and f the field index if it is
	// a field (else -1): comparisons of fields with constants are
	// compiled to one closure.
	k *Node
	f int
}

type compiler struct {
	fields []marker.FieldInfo
	max    int
	ns     float64
	allocs bool
}

// opNames are the operators as CEL writes them, for errors.
var opNames = map[string]string{
	"and": "&&", "or": "||", "not": "!", "cond": "?:",
	"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
	"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "neg": "unary -",
}

func opName(op string) string {
	if s, ok := opNames[op]; ok {
		return s
	}
	return op
}

func (c *compiler) typeError(op string, args ...value) error {
	ts := make([]string, len(args))
	for i, a := range args {
		ts[i] = a.t.String()
	}
	return fmt.Errorf("%w: %s does not apply to (%s)", ErrFilter, opName(op), strings.Join(ts, ", "))
}

func (c *compiler) args(n *Node) ([]value, error) {
	out := make([]value, len(n.Args))
	for i, a := range n.Args {
		v, err := c.node(a)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (c *compiler) node(n *Node) (value, error) {
	if arity[n.Op] == 0 && len(n.Args) == 0 {
		return c.leaf(n)
	}
	if n.Op == "list" {
		return value{}, fmt.Errorf("%w: a list outside the right operand of in", ErrFilter)
	}
	if n.Op == "in" {
		x, err := c.node(n.Args[0])
		if err != nil {
			return value{}, err
		}
		c.ns += nodeNs
		return c.in(x, n.Args[1])
	}
	args, err := c.args(n)
	if err != nil {
		return value{}, err
	}
	c.ns += opNs(n.Op)
	switch n.Op {
	case "and", "or":
		return c.logic(n.Op, args[0], args[1])
	case "not":
		if args[0].t != tBool {
			return value{}, c.typeError(n.Op, args...)
		}
		p := args[0].b
		return boolValue(func(e ev) tri {
			switch p(e) {
			case yes:
				return no
			case no:
				return yes
			}
			return fail
		}), nil
	case "cond":
		return c.cond(args[0], args[1], args[2])
	case "eq", "ne", "lt", "le", "gt", "ge":
		return c.compare(n.Op, args[0], args[1])
	case "add", "sub", "mul", "div", "mod":
		return c.arith(n.Op, args[0], args[1])
	case "neg":
		return c.neg(args[0])
	case "size":
		return c.size(args[0])
	case "startsWith", "endsWith", "contains":
		return c.search(n.Op, args[0], args[1])
	case "matches":
		return c.matches(args[0], args[1])
	case "int", "uint", "double":
		return c.convert(n.Op, args[0])
	}
	return value{}, fmt.Errorf("%w: unknown operator %q", ErrFilter, clip.String(n.Op, 40))
}

func boolValue(b boolFn) value { return value{t: tBool, b: b, f: -1} }

// leaf compiles a constant or a field.
func (c *compiler) leaf(n *Node) (value, error) {
	v := value{k: n, f: -1}
	if n.Op != "bool" && n.Op != "field" {
		c.ns += leafNs
	}
	switch n.Op {
	case "bool":
		c.ns += nodeNs
		r := triOf(n.Bool)
		v.t, v.b = tBool, func(ev) tri { return r }
	case "int", "duration":
		x := n.Int
		v.t, v.i = tInt, func(ev) (int64, bool) { return x, true }
		if n.Op == "duration" {
			v.t = tDuration
		}
	case "uint":
		x := n.Uint
		v.t, v.u = tUint, func(ev) (uint64, bool) { return x, true }
	case "double":
		x := n.Double
		v.t, v.d = tDouble, func(ev) (float64, bool) { return x, true }
	case "string":
		x := n.Str
		v.t, v.s, v.n = tString, func(ev) string { return x }, len(x)
	case "bytes":
		x := n.Bytes
		v.t, v.y, v.n = tBytes, func(ev) []byte { return x }, len(x)
	case "field":
		return c.field(n.Field)
	default:
		return value{}, fmt.Errorf("%w: unknown constant %q", ErrFilter, clip.String(n.Op, 40))
	}
	return v, nil
}

func (c *compiler) field(name string) (value, error) {
	i := slices.IndexFunc(c.fields, func(f marker.FieldInfo) bool { return f.Name == name })
	if i < 0 {
		return value{}, fmt.Errorf("%w: no field %q", ErrFilter, clip.String(name, 40))
	}
	k := c.fields[i].Kind
	v := value{t: typeOf(k), f: i}
	max := c.max
	if v.t != tBool {
		c.ns += leafNs
	}
	switch v.t {
	case tBool:
		c.ns += nodeNs
		v.b = func(e ev) tri { return triOf(e.Field(i).Bool()) }
	case tInt, tDuration:
		v.i = func(e ev) (int64, bool) { return e.Field(i).Int(), true }
	case tUint:
		v.u = func(e ev) (uint64, bool) { return e.Field(i).Uint(), true }
	case tDouble:
		v.d = func(e ev) (float64, bool) { return e.Field(i).Float(), true }
	case tString:
		v.n = max
		v.s = func(e ev) string { return cut(e.Field(i).Str(), max) }
	case tBytes:
		switch k {
		case marker.KindTraceID:
			v.n, v.y = 16, func(e ev) []byte { return e.Field(i).ID() }
		case marker.KindSpanID:
			v.n, v.y = 8, func(e ev) []byte { return e.Field(i).ID() }
		default:
			v.n = max
			v.y = func(e ev) []byte {
				b := e.Field(i).Bytes()
				return b[:min(len(b), max)]
			}
		}
	default:
		return value{}, fmt.Errorf("%w: field %q is %s, which filters cannot read", ErrFilter, name, k)
	}
	return v, nil
}

// cut returns s cut to max bytes, as a filter sees it.
func cut(s string, max int) string {
	if len(s) > max {
		return s[:max]
	}
	return s
}

// logic compiles && and ||, which in CEL are commutative about errors:
// an error on one side is absorbed when the other side decides.
func (c *compiler) logic(op string, a, b value) (value, error) {
	if a.t != tBool || b.t != tBool {
		return value{}, c.typeError(op, a, b)
	}
	// "and" and "or" are duals: the value that decides (false for and,
	// true for or) wins over an error on the other side.
	l, r := a.b, b.b
	decides, otherwise := yes, no
	if op == "and" {
		decides, otherwise = no, yes
	}
	return boolValue(func(e ev) tri {
		x := l(e)
		if x == decides {
			return decides
		}
		y := r(e)
		if y == decides {
			return decides
		}
		if x == fail || y == fail {
			return fail
		}
		return otherwise
	}), nil
}

func (c *compiler) cond(p, a, b value) (value, error) {
	if p.t != tBool || a.t != b.t || a.t == tList {
		return value{}, c.typeError("cond", p, a, b)
	}
	q := p.b
	v := value{t: a.t, f: -1, n: max(a.n, b.n)}
	switch a.t {
	case tBool:
		x, y := a.b, b.b
		v.b = func(e ev) tri {
			switch q(e) {
			case yes:
				return x(e)
			case no:
				return y(e)
			}
			return fail
		}
	case tInt, tDuration:
		v.i = condOf(q, a.i, b.i)
	case tUint:
		v.u = condOf(q, a.u, b.u)
	case tDouble:
		v.d = condOf(q, a.d, b.d)
	default:
		return value{}, fmt.Errorf("%w: ?: choosing between strings or bytes is not supported", ErrFilter)
	}
	return v, nil
}

func condOf[T any](q boolFn, a, b func(ev) (T, bool)) func(ev) (T, bool) {
	return func(e ev) (T, bool) {
		switch q(e) {
		case yes:
			return a(e)
		case no:
			return b(e)
		}
		var zero T
		return zero, false
	}
}

// compare compiles the comparisons, which CEL defines between two values
// of one type (bools are ordered too, false first).
func (c *compiler) compare(op string, a, b value) (value, error) {
	if a.t != b.t || a.t == tList {
		return value{}, c.typeError(op, a, b)
	}
	switch a.t {
	case tInt, tDuration:
		return boolValue(compareFn(op, a.i, b.i, a, b, func(e ev, i int) int64 { return e.Field(i).Int() })), nil
	case tUint:
		return boolValue(compareFn(op, a.u, b.u, a, b, func(e ev, i int) uint64 { return e.Field(i).Uint() })), nil
	case tDouble:
		return boolValue(compareFn(op, a.d, b.d, a, b, func(e ev, i int) float64 { return e.Field(i).Float() })), nil
	case tString:
		c.ns += float64(min(a.n, b.n)) * compareNsPerByte
		x, y := a.s, b.s
		return boolValue(compareFn(op, func(e ev) (string, bool) { return x(e), true },
			func(e ev) (string, bool) { return y(e), true }, value{f: -1}, value{f: -1}, nil)), nil
	case tBytes:
		c.ns += float64(min(a.n, b.n)) * compareNsPerByte
		x, y := a.y, b.y
		return boolValue(compareFn(op, func(e ev) (int, bool) { return bytes.Compare(x(e), y(e)), true },
			func(ev) (int, bool) { return 0, true }, value{f: -1}, value{f: -1}, nil)), nil
	case tBool:
		x, y := a.b, b.b
		num := func(p boolFn) func(ev) (int, bool) {
			return func(e ev) (int, bool) {
				switch p(e) {
				case yes:
					return 1, true
				case no:
					return 0, true
				}
				return 0, false
			}
		}
		return boolValue(compareFn(op, num(x), num(y), value{f: -1}, value{f: -1}, nil)), nil
	}
	return value{}, c.typeError(op, a, b)
}

// constOf returns the constant of a numeric constant value.
func constOf[T any](v value) (T, bool) {
	var zero T
	if v.k == nil {
		return zero, false
	}
	var x any
	switch v.k.Op {
	case "int", "duration":
		x = v.k.Int
	case "uint":
		x = v.k.Uint
	case "double":
		x = v.k.Double
	case "string":
		x = v.k.Str
	}
	t, ok := x.(T)
	return t, ok
}

// compareFn compiles a comparison of get results; a comparison of a field
// (read by field) with a constant becomes one closure.
func compareFn[T cmp.Ordered](op string, x, y func(ev) (T, bool), a, b value, field func(ev, int) T) boolFn {
	if field != nil {
		if a.f < 0 && b.f >= 0 {
			a, b, x, y, op = b, a, y, x, flip[op]
		}
		if k, ok := constOf[T](b); ok && a.f >= 0 {
			i := a.f
			return compareField(op, i, k, field)
		}
	}
	switch op {
	case "eq":
		return cmpOf(x, y, func(p, q T) bool { return p == q })
	case "ne":
		return cmpOf(x, y, func(p, q T) bool { return p != q })
	case "lt":
		return cmpOf(x, y, func(p, q T) bool { return p < q })
	case "le":
		return cmpOf(x, y, func(p, q T) bool { return p <= q })
	case "gt":
		return cmpOf(x, y, func(p, q T) bool { return p > q })
	}
	return cmpOf(x, y, func(p, q T) bool { return p >= q })
}

// flip mirrors a comparison, for a constant on the left.
var flip = map[string]string{"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}

func cmpOf[T any](x, y func(ev) (T, bool), f func(p, q T) bool) boolFn {
	return func(e ev) tri {
		p, ok1 := x(e)
		q, ok2 := y(e)
		if !ok1 || !ok2 {
			return fail
		}
		return triOf(f(p, q))
	}
}

func compareField[T cmp.Ordered](op string, i int, k T, field func(ev, int) T) boolFn {
	switch op {
	case "eq":
		return func(e ev) tri { return triOf(field(e, i) == k) }
	case "ne":
		return func(e ev) tri { return triOf(field(e, i) != k) }
	case "lt":
		return func(e ev) tri { return triOf(field(e, i) < k) }
	case "le":
		return func(e ev) tri { return triOf(field(e, i) <= k) }
	case "gt":
		return func(e ev) tri { return triOf(field(e, i) > k) }
	}
	return func(e ev) tri { return triOf(field(e, i) >= k) }
}

// arith compiles + - * / % with CEL's checks: integer overflow and
// division by zero are errors.
func (c *compiler) arith(op string, a, b value) (value, error) {
	if a.t != b.t {
		return value{}, c.typeError(op, a, b)
	}
	v := value{t: a.t, f: -1}
	switch a.t {
	case tInt:
		f := intOps[op]
		x, y := a.i, b.i
		v.i = func(e ev) (int64, bool) {
			p, ok1 := x(e)
			q, ok2 := y(e)
			if !ok1 || !ok2 {
				return 0, false
			}
			return f(p, q)
		}
	case tDuration:
		if op != "add" && op != "sub" {
			return value{}, c.typeError(op, a, b)
		}
		f := intOps[op]
		x, y := a.i, b.i
		v.i = func(e ev) (int64, bool) {
			p, ok1 := x(e)
			q, ok2 := y(e)
			if !ok1 || !ok2 {
				return 0, false
			}
			return f(p, q)
		}
	case tUint:
		f := uintOps[op]
		x, y := a.u, b.u
		v.u = func(e ev) (uint64, bool) {
			p, ok1 := x(e)
			q, ok2 := y(e)
			if !ok1 || !ok2 {
				return 0, false
			}
			return f(p, q)
		}
	case tDouble:
		f, ok := doubleOps[op]
		if !ok {
			return value{}, c.typeError(op, a, b)
		}
		x, y := a.d, b.d
		v.d = func(e ev) (float64, bool) {
			p, ok1 := x(e)
			q, ok2 := y(e)
			if !ok1 || !ok2 {
				return 0, false
			}
			return f(p, q), true
		}
	default:
		return value{}, c.typeError(op, a, b)
	}
	return v, nil
}

var intOps = map[string]func(p, q int64) (int64, bool){
	"add": func(p, q int64) (int64, bool) {
		r := p + q
		return r, (p^r)&(q^r) >= 0
	},
	"sub": func(p, q int64) (int64, bool) {
		r := p - q
		return r, (p^q)&(p^r) >= 0
	},
	"mul": func(p, q int64) (int64, bool) {
		if p == 0 || q == 0 {
			return 0, true
		}
		r := p * q
		if (p == -1 && q == math.MinInt64) || (q == -1 && p == math.MinInt64) || r/q != p {
			return 0, false
		}
		return r, true
	},
	"div": func(p, q int64) (int64, bool) {
		if q == 0 || (p == math.MinInt64 && q == -1) {
			return 0, false
		}
		return p / q, true
	},
	"mod": func(p, q int64) (int64, bool) {
		if q == 0 || (p == math.MinInt64 && q == -1) {
			return 0, false
		}
		return p % q, true
	},
}

var uintOps = map[string]func(p, q uint64) (uint64, bool){
	"add": func(p, q uint64) (uint64, bool) {
		r, carry := bits.Add64(p, q, 0)
		return r, carry == 0
	},
	"sub": func(p, q uint64) (uint64, bool) { return p - q, q <= p },
	"mul": func(p, q uint64) (uint64, bool) {
		hi, lo := bits.Mul64(p, q)
		return lo, hi == 0
	},
	"div": func(p, q uint64) (uint64, bool) {
		if q == 0 {
			return 0, false
		}
		return p / q, true
	},
	"mod": func(p, q uint64) (uint64, bool) {
		if q == 0 {
			return 0, false
		}
		return p % q, true
	},
}

var doubleOps = map[string]func(p, q float64) float64{
	"add": func(p, q float64) float64 { return p + q },
	"sub": func(p, q float64) float64 { return p - q },
	"mul": func(p, q float64) float64 { return p * q },
	"div": func(p, q float64) float64 { return p / q },
}

func (c *compiler) neg(a value) (value, error) {
	v := value{t: a.t, f: -1}
	switch a.t {
	case tInt:
		x := a.i
		v.i = func(e ev) (int64, bool) {
			p, ok := x(e)
			if !ok || p == math.MinInt64 {
				return 0, false
			}
			return -p, true
		}
	case tDouble:
		x := a.d
		v.d = func(e ev) (float64, bool) {
			p, ok := x(e)
			return -p, ok
		}
	default:
		return value{}, c.typeError("neg", a)
	}
	return v, nil
}

// in compiles x in [constants], a scan of the constants.
func (c *compiler) in(x value, list *Node) (value, error) {
	if list.Op != "list" {
		return value{}, fmt.Errorf("%w: in needs a list of constants on its right", ErrFilter)
	}
	elems := list.Args
	c.ns += float64(len(elems)) * nodeNs
	for _, el := range elems {
		if t := constType(el); t != x.t {
			return value{}, fmt.Errorf("%w: in: a %s is looked for in a list holding a %s", ErrFilter, x.t, t)
		}
	}
	switch x.t {
	case tInt, tDuration:
		return boolValue(inOf(x.i, elems, func(n *Node) int64 { return n.Int })), nil
	case tUint:
		return boolValue(inOf(x.u, elems, func(n *Node) uint64 { return n.Uint })), nil
	case tDouble:
		return boolValue(inOf(x.d, elems, func(n *Node) float64 { return n.Double })), nil
	case tString:
		for _, el := range elems {
			c.ns += float64(min(len(el.Str), x.n)) * compareNsPerByte
		}
		get := x.s
		return boolValue(inOf(func(e ev) (string, bool) { return get(e), true }, elems, func(n *Node) string { return n.Str })), nil
	case tBool:
		get := x.b
		return boolValue(inOf(func(e ev) (bool, bool) {
			r := get(e)
			return r == yes, r != fail
		}, elems, func(n *Node) bool { return n.Bool })), nil
	case tBytes:
		for _, el := range elems {
			c.ns += float64(min(len(el.Bytes), x.n)) * compareNsPerByte
		}
		get := x.y
		set := make([][]byte, len(elems))
		for j, el := range elems {
			set[j] = el.Bytes
		}
		return boolValue(func(e ev) tri {
			b := get(e)
			return triOf(slices.ContainsFunc(set, func(s []byte) bool { return bytes.Equal(s, b) }))
		}), nil
	}
	return value{}, c.typeError("in", x, value{t: tList})
}

// constType is the type of a constant node.
func constType(n *Node) typ {
	switch n.Op {
	case "bool":
		return tBool
	case "int":
		return tInt
	case "uint":
		return tUint
	case "double":
		return tDouble
	case "string":
		return tString
	case "bytes":
		return tBytes
	case "duration":
		return tDuration
	}
	return 0
}

func inOf[T comparable](get func(ev) (T, bool), elems []*Node, conv func(*Node) T) boolFn {
	set := make([]T, len(elems))
	for j, el := range elems {
		set[j] = conv(el)
	}
	return func(e ev) tri {
		x, ok := get(e)
		if !ok {
			return fail
		}
		return triOf(slices.Contains(set, x))
	}
}

// size compiles size of a string (its length in runes, as CEL counts it)
// or bytes.
func (c *compiler) size(a value) (value, error) {
	v := value{t: tInt, f: -1}
	switch a.t {
	case tString:
		c.ns += float64(a.n) * scanNsPerByte
		get := a.s
		v.i = func(e ev) (int64, bool) { return int64(utf8.RuneCountInString(get(e))), true }
	case tBytes:
		get := a.y
		v.i = func(e ev) (int64, bool) { return int64(len(get(e))), true }
	default:
		return value{}, c.typeError("size", a)
	}
	return v, nil
}

func (c *compiler) search(op string, a, b value) (value, error) {
	if a.t != tString || b.t != tString {
		return value{}, c.typeError(op, a, b)
	}
	x, y := a.s, b.s
	if op == "contains" {
		c.ns += containsNs(a.n, b.n)
		if s, ok := constOf[string](b); ok {
			return boolValue(func(e ev) tri { return triOf(strings.Contains(x(e), s)) }), nil
		}
		return boolValue(func(e ev) tri { return triOf(strings.Contains(x(e), y(e))) }), nil
	}
	c.ns += float64(min(a.n, b.n)) * compareNsPerByte
	f := strings.HasPrefix
	if op == "endsWith" {
		f = strings.HasSuffix
	}
	if s, ok := constOf[string](b); ok {
		return boolValue(func(e ev) tri { return triOf(f(x(e), s)) }), nil
	}
	return boolValue(func(e ev) tri { return triOf(f(x(e), y(e))) }), nil
}

func (c *compiler) matches(a, b value) (value, error) {
	pattern, ok := constOf[string](b)
	if a.t != tString || !ok {
		if a.t == tString && b.t == tString {
			return value{}, fmt.Errorf("%w: matches needs a constant pattern", ErrFilter)
		}
		return value{}, c.typeError("matches", a, b)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return value{}, fmt.Errorf("%w: matches: %v", ErrFilter, err)
	}
	c.ns += regexNs(a.n, regexSize(pattern))
	c.allocs = true
	x := a.s
	return boolValue(func(e ev) tri { return triOf(re.MatchString(x(e))) }), nil
}

// regexSize is the size of a pattern for the cost model: its length, or
// the number of instructions of its compiled program if more (a{1000} is
// seven characters and a thousand instructions).
func regexSize(pattern string) int {
	n := len(pattern)
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return n
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return n
	}
	return max(n, len(prog.Inst))
}

// convert compiles the conversions between numbers, with CEL's range
// checks.
func (c *compiler) convert(op string, a value) (value, error) {
	v := value{f: -1}
	switch {
	case op == "int" && a.t == tInt, op == "uint" && a.t == tUint, op == "double" && a.t == tDouble:
		a.k, a.f = nil, -1
		return a, nil
	case op == "int" && a.t == tUint:
		x := a.u
		v.t, v.i = tInt, func(e ev) (int64, bool) {
			p, ok := x(e)
			return int64(p), ok && p <= math.MaxInt64
		}
	case op == "int" && a.t == tDouble:
		x := a.d
		v.t, v.i = tInt, func(e ev) (int64, bool) {
			p, ok := x(e)
			if !ok || math.IsNaN(p) || p <= math.MinInt64 || p >= math.MaxInt64 {
				return 0, false
			}
			return int64(p), true
		}
	case op == "uint" && a.t == tInt:
		x := a.i
		v.t, v.u = tUint, func(e ev) (uint64, bool) {
			p, ok := x(e)
			return uint64(p), ok && p >= 0
		}
	case op == "uint" && a.t == tDouble:
		x := a.d
		v.t, v.u = tUint, func(e ev) (uint64, bool) {
			p, ok := x(e)
			if !ok || math.IsNaN(p) || p < 0 || p >= math.MaxUint64 {
				return 0, false
			}
			return uint64(p), true
		}
	case op == "double" && a.t == tInt:
		x := a.i
		v.t, v.d = tDouble, func(e ev) (float64, bool) {
			p, ok := x(e)
			return float64(p), ok
		}
	case op == "double" && a.t == tUint:
		x := a.u
		v.t, v.d = tDouble, func(e ev) (float64, bool) {
			p, ok := x(e)
			return float64(p), ok
		}
	default:
		return value{}, c.typeError(op, a)
	}
	return v, nil
}
