package session

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/tracemark/tracemark/marker"
)

// The native filter path. Most operator filters are comparisons of fields
// with constants joined by && and ||, such as
// `status >= 500 && path.startsWith("/api")`. CEL evaluates them in about
// 100 ns and boxes field values (allocating for strings and large
// integers). For that subset we compile the type-checked CEL expression
// into Go closures over the event's fields: a few nanoseconds, no
// allocation. Everything else runs on the CEL program. CEL stays the
// language and the type checker; this is only an evaluator for the easy
// cases, checked against CEL by a differential test.

type pred func(e *marker.Event) bool

// compileNative returns a native evaluator for the checked expression and
// a bound on what it takes per event, in ns, or false if the expression is
// outside the supported subset. String fields are cut to maxString bytes,
// as the CEL program sees them.
func compileNative(checked *cel.Ast, m *marker.Info, maxString int) (pred, float64, bool) {
	n := native{m: m, maxString: maxString, ns: new(float64)}
	p, ok := n.boolean(checked.NativeRep().Expr())
	return p, *n.ns, ok
}

// native compiles expressions over m's fields, adding to *ns what each
// closure takes at most (see cost.go): both sides of && and || count,
// since neither is sure to be skipped.
type native struct {
	m         *marker.Info
	maxString int
	ns        *float64
}

// str returns the getter of string field i, cut as filters see it.
func (n native) str(i int) func(e *marker.Event) string {
	max := n.maxString
	return func(e *marker.Event) string { return cutString(e.Field(i).Str(), max) }
}

func (n native) boolean(x ast.Expr) (pred, bool) {
	m := n.m
	*n.ns += nativeNodeNs
	switch x.Kind() {
	case ast.LiteralKind:
		b, ok := x.AsLiteral().(types.Bool)
		return func(*marker.Event) bool { return bool(b) }, ok
	case ast.IdentKind:
		i := m.FieldIndex(x.AsIdent())
		if i < 0 || m.Field(i).Kind != marker.KindBool {
			return nil, false
		}
		return func(e *marker.Event) bool { return e.Field(i).Bool() }, true
	case ast.CallKind:
		return n.call(x.AsCall())
	}
	return nil, false
}

func (n native) call(c ast.CallExpr) (pred, bool) {
	args := c.Args()
	switch fn := c.FunctionName(); fn {
	case "_&&_", "_||_":
		l, ok1 := n.boolean(args[0])
		r, ok2 := n.boolean(args[1])
		if !ok1 || !ok2 {
			return nil, false
		}
		if fn == "_&&_" {
			return func(e *marker.Event) bool { return l(e) && r(e) }, true
		}
		return func(e *marker.Event) bool { return l(e) || r(e) }, true
	case "!_":
		p, ok := n.boolean(args[0])
		return func(e *marker.Event) bool { return !p(e) }, ok
	case "_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_":
		return n.compare(fn, args[0], args[1])
	case "@in":
		return n.in(args[0], args[1])
	case "startsWith", "endsWith", "contains":
		if !c.IsMemberFunction() || len(args) != 1 {
			return nil, false
		}
		i, ok := stringField(c.Target(), n.m)
		lit, isStr := literalOf(args[0]).(types.String)
		if !ok || !isStr {
			return nil, false
		}
		s, get := string(lit), n.str(i)
		if fn == "contains" {
			*n.ns += containsNs(uint64(n.maxString), uint64(len(s)))
		} else {
			*n.ns += float64(len(s)) * nativeCompareNsPer
		}
		switch fn {
		case "startsWith":
			return func(e *marker.Event) bool { return strings.HasPrefix(get(e), s) }, true
		case "endsWith":
			return func(e *marker.Event) bool { return strings.HasSuffix(get(e), s) }, true
		}
		return func(e *marker.Event) bool { return strings.Contains(get(e), s) }, true
	}
	return nil, false
}

func stringField(x ast.Expr, m *marker.Info) (int, bool) {
	if x.Kind() != ast.IdentKind {
		return 0, false
	}
	i := m.FieldIndex(x.AsIdent())
	return i, i >= 0 && m.Field(i).Kind == marker.KindString
}

// literalOf returns a constant operand: a literal, or duration("...") with
// a literal string, or nil.
func literalOf(x ast.Expr) any {
	switch x.Kind() {
	case ast.LiteralKind:
		return x.AsLiteral()
	case ast.CallKind:
		c := x.AsCall()
		if c.FunctionName() != "duration" || len(c.Args()) != 1 || c.Args()[0].Kind() != ast.LiteralKind {
			return nil
		}
		s, ok := c.Args()[0].AsLiteral().(types.String)
		if !ok {
			return nil
		}
		d, err := time.ParseDuration(string(s))
		if err != nil {
			return nil
		}
		return types.Duration{Duration: d}
	}
	return nil
}

// flip mirrors a comparison so that the field is on the left.
var flip = map[string]string{"_==_": "_==_", "_!=_": "_!=_", "_<_": "_>_", "_<=_": "_>=_", "_>_": "_<_", "_>=_": "_<=_"}

func (n native) compare(op string, a, b ast.Expr) (pred, bool) {
	m := n.m
	if _, ok := sizeField(a, m); a.Kind() != ast.IdentKind && !ok {
		a, b, op = b, a, flip[op]
	}
	if _, ok := sizeField(a, m); ok {
		return n.compareSize(op, a, b)
	}
	if a.Kind() != ast.IdentKind {
		return nil, false
	}
	i := m.FieldIndex(a.AsIdent())
	if i < 0 {
		return nil, false
	}
	k := m.Field(i).Kind
	switch lit := literalOf(b).(type) {
	case types.Int:
		if !k.Signed() || k == marker.KindDuration {
			return nil, false
		}
		return compareOrdered(op, int64(lit), func(e *marker.Event) int64 { return e.Field(i).Int() })
	case types.Duration:
		if k != marker.KindDuration {
			return nil, false
		}
		return compareOrdered(op, int64(lit.Duration), func(e *marker.Event) int64 { return e.Field(i).Int() })
	case types.Uint:
		if !k.Unsigned() {
			return nil, false
		}
		return compareOrdered(op, uint64(lit), func(e *marker.Event) uint64 { return e.Field(i).Uint() })
	case types.Double:
		if !k.Float() {
			return nil, false
		}
		return compareOrdered(op, float64(lit), func(e *marker.Event) float64 { return e.Field(i).Float() })
	case types.String:
		if k != marker.KindString {
			return nil, false
		}
		*n.ns += float64(min(len(lit), n.maxString)) * nativeCompareNsPer
		return compareOrdered(op, string(lit), n.str(i))
	case types.Bool:
		if k != marker.KindBool || (op != "_==_" && op != "_!=_") {
			return nil, false
		}
		want := bool(lit) == (op == "_==_")
		return func(e *marker.Event) bool { return e.Field(i).Bool() == want }, true
	}
	return nil, false
}

func compareOrdered[T int64 | uint64 | float64 | string](op string, c T, get func(*marker.Event) T) (pred, bool) {
	switch op {
	case "_==_":
		return func(e *marker.Event) bool { return get(e) == c }, true
	case "_!=_":
		return func(e *marker.Event) bool { return get(e) != c }, true
	case "_<_":
		return func(e *marker.Event) bool { return get(e) < c }, true
	case "_<=_":
		return func(e *marker.Event) bool { return get(e) <= c }, true
	case "_>_":
		return func(e *marker.Event) bool { return get(e) > c }, true
	case "_>=_":
		return func(e *marker.Event) bool { return get(e) >= c }, true
	}
	return nil, false
}

// sizeField returns the field f of an expression size(f) or f.size(),
// for a string or bytes field f.
func sizeField(x ast.Expr, m *marker.Info) (int, bool) {
	if x.Kind() != ast.CallKind || x.AsCall().FunctionName() != "size" {
		return 0, false
	}
	c := x.AsCall()
	arg := c.Target()
	if !c.IsMemberFunction() {
		if len(c.Args()) != 1 {
			return 0, false
		}
		arg = c.Args()[0]
	} else if len(c.Args()) != 0 {
		return 0, false
	}
	if arg.Kind() != ast.IdentKind {
		return 0, false
	}
	i := m.FieldIndex(arg.AsIdent())
	if i < 0 || (m.Field(i).Kind != marker.KindString && m.Field(i).Kind != marker.KindBytes) {
		return 0, false
	}
	return i, true
}

// compareSize compares the size of a string field (its length in runes,
// which CEL's size counts) or bytes field with an int constant.
func (n native) compareSize(op string, size, b ast.Expr) (pred, bool) {
	i, _ := sizeField(size, n.m)
	lit, ok := literalOf(b).(types.Int)
	if !ok {
		return nil, false
	}
	if n.m.Field(i).Kind == marker.KindBytes {
		max := n.maxString
		return compareOrdered(op, int64(lit), func(e *marker.Event) int64 { return int64(min(len(e.Field(i).Bytes()), max)) })
	}
	*n.ns += float64(n.maxString) * scanNsPerByte
	get := n.str(i)
	return compareOrdered(op, int64(lit), func(e *marker.Event) int64 { return int64(utf8.RuneCountInString(get(e))) })
}

// in compiles `field in [constants]`: a scan of the constants.
func (n native) in(x, list ast.Expr) (pred, bool) {
	if x.Kind() != ast.IdentKind || list.Kind() != ast.ListKind || len(list.AsList().OptionalIndices()) > 0 {
		return nil, false
	}
	i := n.m.FieldIndex(x.AsIdent())
	if i < 0 {
		return nil, false
	}
	k := n.m.Field(i).Kind
	elems := list.AsList().Elements()
	*n.ns += float64(len(elems)) * nativeNodeNs
	switch {
	case k == marker.KindDuration:
		return inList(elems, func(v any) (int64, bool) {
			d, ok := v.(types.Duration)
			return int64(d.Duration), ok
		}, func(e *marker.Event) int64 { return e.Field(i).Int() })
	case k.Signed():
		return inList(elems, func(v any) (int64, bool) {
			c, ok := v.(types.Int)
			return int64(c), ok
		}, func(e *marker.Event) int64 { return e.Field(i).Int() })
	case k.Unsigned():
		return inList(elems, func(v any) (uint64, bool) {
			c, ok := v.(types.Uint)
			return uint64(c), ok
		}, func(e *marker.Event) uint64 { return e.Field(i).Uint() })
	case k == marker.KindString:
		for _, el := range elems {
			if s, ok := literalOf(el).(types.String); ok {
				*n.ns += float64(min(len(s), n.maxString)) * nativeCompareNsPer
			}
		}
		return inList(elems, func(v any) (string, bool) {
			c, ok := v.(types.String)
			return string(c), ok
		}, n.str(i))
	}
	return nil, false
}

// inList compiles a membership test of get(e) in the constants elems,
// each of which conv must accept.
func inList[T int64 | uint64 | string](elems []ast.Expr, conv func(any) (T, bool), get func(*marker.Event) T) (pred, bool) {
	set := make([]T, len(elems))
	for j, el := range elems {
		c, ok := conv(literalOf(el))
		if !ok {
			return nil, false
		}
		set[j] = c
	}
	return func(e *marker.Event) bool { return slices.Contains(set, get(e)) }, true
}
