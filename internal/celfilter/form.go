package celfilter

import (
	"fmt"
	"math"
	"time"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/tracemark/tracemark/internal/filterform"
)

// callOps are the CEL functions the checked form has, by the form's name.
var callOps = map[string]string{
	"_&&_": "and", "_||_": "or", "!_": "not", "_?_:_": "cond",
	"_==_": "eq", "_!=_": "ne", "_<_": "lt", "_<=_": "le", "_>_": "gt", "_>=_": "ge",
	"_+_": "add", "_-_": "sub", "_*_": "mul", "_/_": "div", "_%_": "mod", "-_": "neg",
	"@in": "in", "size": "size", "startsWith": "startsWith", "endsWith": "endsWith",
	"contains": "contains", "matches": "matches", "int": "int", "uint": "uint", "double": "double",
}

// ToForm returns the checked form of a CEL expression, or an error that
// names the first construct the form does not have. The result is not
// type-checked: filterform.Compile does that for each marker.
func ToForm(x celast.Expr) (*filterform.Node, error) {
	n, err := toForm(x, 1)
	if err != nil {
		return nil, err
	}
	if _, err := filterform.Encode(n); err != nil { // the limits
		return nil, err
	}
	return n, nil
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", filterform.ErrFilter, fmt.Sprintf(format, args...))
}

func toForm(x celast.Expr, depth int) (*filterform.Node, error) {
	if depth > filterform.MaxDepth {
		return nil, unsupported("the expression is nested more than %d deep", filterform.MaxDepth)
	}
	switch x.Kind() {
	case celast.LiteralKind:
		return literal(x.AsLiteral())
	case celast.IdentKind:
		return &filterform.Node{Op: "field", Field: x.AsIdent()}, nil
	case celast.SelectKind:
		return nil, unsupported("field selection (.%s) and has()", x.AsSelect().FieldName())
	case celast.ListKind:
		return nil, unsupported("a list outside `x in [constants]`")
	case celast.MapKind:
		return nil, unsupported("a map")
	case celast.StructKind:
		return nil, unsupported("a message")
	case celast.ComprehensionKind:
		return nil, unsupported("a comprehension (all, exists, exists_one, map, filter)")
	case celast.CallKind:
		return call(x.AsCall(), depth)
	}
	return nil, unsupported("this expression")
}

func call(c celast.CallExpr, depth int) (*filterform.Node, error) {
	fn := c.FunctionName()
	if fn == "duration" && len(c.Args()) == 1 && !c.IsMemberFunction() {
		if k, err := constant(c.Args()[0]); err == nil && k.Op == "string" {
			return durationOf(k.Str)
		}
		return nil, unsupported("duration() of anything but a string constant")
	}
	op, ok := callOps[fn]
	if !ok {
		return nil, unsupported("%s()", fn)
	}
	args := c.Args()
	if c.IsMemberFunction() {
		args = append([]celast.Expr{c.Target()}, args...)
	}
	n := &filterform.Node{Op: op}
	for j, a := range args {
		var an *filterform.Node
		var err error
		if op == "in" && j == 1 {
			an, err = list(a)
		} else {
			an, err = toForm(a, depth+1)
		}
		if err != nil {
			return nil, err
		}
		n.Args = append(n.Args, an)
	}
	return n, nil
}

// list converts the list of `x in [constants]`.
func list(x celast.Expr) (*filterform.Node, error) {
	if x.Kind() != celast.ListKind || len(x.AsList().OptionalIndices()) > 0 {
		return nil, unsupported("in over anything but a list of constants")
	}
	n := &filterform.Node{Op: "list"}
	for _, el := range x.AsList().Elements() {
		k, err := constant(el)
		if err != nil {
			return nil, unsupported("in over a list of anything but constants")
		}
		if k.Op == "neg" { // -0.0, equal to 0.0
			k = &filterform.Node{Op: "double"}
		}
		n.Args = append(n.Args, k)
	}
	return n, nil
}

// constant converts a literal, or duration() of a literal string.
func constant(x celast.Expr) (*filterform.Node, error) {
	switch x.Kind() {
	case celast.LiteralKind:
		return literal(x.AsLiteral())
	case celast.CallKind:
		c := x.AsCall()
		if c.FunctionName() == "duration" && len(c.Args()) == 1 && !c.IsMemberFunction() && c.Args()[0].Kind() == celast.LiteralKind {
			if s, ok := c.Args()[0].AsLiteral().(types.String); ok {
				return durationOf(string(s))
			}
		}
	}
	return nil, unsupported("not a constant")
}

func durationOf(s string) (*filterform.Node, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, unsupported("duration(%q): %v", s, err)
	}
	return &filterform.Node{Op: "duration", Int: int64(d)}, nil
}

func literal(v any) (*filterform.Node, error) {
	switch v := v.(type) {
	case types.Bool:
		return &filterform.Node{Op: "bool", Bool: bool(v)}, nil
	case types.Int:
		return &filterform.Node{Op: "int", Int: int64(v)}, nil
	case types.Uint:
		return &filterform.Node{Op: "uint", Uint: uint64(v)}, nil
	case types.Double:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, unsupported("a double constant that is not finite")
		}
		if v == 0 && math.Signbit(float64(v)) {
			// JSON leaves out a zero; the form writes -0.0 as -(0.0).
			return &filterform.Node{Op: "neg", Args: []*filterform.Node{{Op: "double"}}}, nil
		}
		return &filterform.Node{Op: "double", Double: float64(v)}, nil
	case types.String:
		return &filterform.Node{Op: "string", Str: string(v)}, nil
	case types.Bytes:
		return &filterform.Node{Op: "bytes", Bytes: []byte(v)}, nil
	}
	return nil, unsupported("a %T constant", v)
}
