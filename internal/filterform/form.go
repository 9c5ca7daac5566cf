// Package filterform is the checked form of a filter: the expression tree
// that a client compiles from CEL source and type-checks against the
// markers, and that the agent validates, bounds and evaluates natively,
// without linking CEL.
//
// A form is JSON (see [Form] and [Node]): small, plain data, readable in
// a request body. The agent treats it as hostile input. [Decode] refuses
// what is malformed (unknown operators, wrong arities, constants of the
// wrong kind, deep or huge trees) with an error that wraps [ErrFilter], and
// [Compile] type-checks a form against one marker's fields with CEL's
// rules (no implicit conversions; int, uint and double do not mix), bounds
// its cost and turns it into Go closures. Neither panics on any input.
//
// The operators are those of CEL that the agent evaluates: constants and
// fields; &&, ||, ! and ?: ; ==, !=, <, <=, >, >= ; +, -, *, /, % and
// unary minus over int, uint and double (+ and - over durations too);
// `x in [constants]`; size of a string or bytes; startsWith, endsWith,
// contains and matches (a constant pattern) on strings; and the int,
// uint and double conversions between numbers. Evaluation follows CEL:
// an error (an integer overflow, a division by zero, a conversion out of
// range) is absorbed by && and || when the other side decides, and
// rejects the event otherwise.
package filterform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tracemark/tracemark/internal/clip"
)

var (
	// ErrFilter is wrapped by errors about filter expressions: syntax,
	// unknown fields, type errors, an expression that is not a boolean,
	// a malformed checked form, or one too expensive to run where markers
	// fire ([ErrFilterCost]).
	ErrFilter = errors.New("invalid filter")
	// ErrFilterCost is wrapped by errors about filters whose static cost
	// bound exceeds the budget. It wraps [ErrFilter].
	ErrFilterCost = fmt.Errorf("%w: too expensive", ErrFilter)
)

// Version is the version of the form this package reads and writes.
const Version = 1

// Limits on a form, beyond which Decode refuses it. A form compiled from
// a filter of wire.MaxFilterLen bytes stays well within them.
const (
	// MaxLen bounds an encoded form, in bytes.
	MaxLen = 32 << 10
	// MaxNodes bounds the number of nodes of a form. The cost budget
	// allows fewer in practice (see cost.go).
	MaxNodes = 2048
	// MaxDepth bounds the nesting of a form.
	MaxDepth = 64
	// MaxConstLen bounds a string or bytes constant, in bytes.
	MaxConstLen = 4096
)

// Form is a checked filter as it travels: a version and the expression.
type Form struct {
	V    int   `json:"v"`
	Expr *Node `json:"expr"`
}

// Node is one node of a form. Op says what it is; the other fields are
// its operands, those that Op uses (see ops):
//
//   - constants: "bool" (Bool), "int" (Int), "uint" (Uint), "double"
//     (Double), "string" (Str), "bytes" (Bytes, base64 in JSON),
//     "duration" (Int nanoseconds), and "list" (Args, constants of one
//     type, only as the right operand of "in");
//   - "field": the marker's field named Field;
//   - operators, over Args: "and", "or", "not", "cond" (c ? a : b), "eq",
//     "ne", "lt", "le", "gt", "ge", "add", "sub", "mul", "div", "mod",
//     "neg", "in", "size", "startsWith", "endsWith", "contains",
//     "matches" (the pattern a "string" constant), "int", "uint" and
//     "double" with one argument (conversions; with none they are
//     constants).
type Node struct {
	Op     string  `json:"op"`
	Field  string  `json:"field,omitempty"`
	Bool   bool    `json:"bool,omitempty"`
	Int    int64   `json:"int,omitempty"`
	Uint   uint64  `json:"uint,omitempty"`
	Double float64 `json:"double,omitempty"`
	Str    string  `json:"str,omitempty"`
	Bytes  []byte  `json:"bytes,omitempty"`
	Args   []*Node `json:"args,omitempty"`
}

// arity is the number of arguments of each operator; -1: any number
// (a list). Constants and fields have none.
var arity = map[string]int{
	"bool": 0, "int": 0, "uint": 0, "double": 0, "string": 0, "bytes": 0, "duration": 0,
	"field": 0, "list": -1,
	"and": 2, "or": 2, "not": 1, "cond": 3,
	"eq": 2, "ne": 2, "lt": 2, "le": 2, "gt": 2, "ge": 2,
	"add": 2, "sub": 2, "mul": 2, "div": 2, "mod": 2, "neg": 1,
	"in": 2, "size": 1, "startsWith": 2, "endsWith": 2, "contains": 2, "matches": 2,
}

// conversions are the operators that are constants without arguments and
// conversions with one.
var conversions = map[string]bool{"int": true, "uint": true, "double": true}

// Encode returns the JSON of the form of expr.
func Encode(expr *Node) ([]byte, error) {
	b, err := json.Marshal(Form{V: Version, Expr: expr})
	if err != nil {
		return nil, fmt.Errorf("encoding a filter: %w: %v", ErrFilter, err)
	}
	if err := check(expr); err != nil {
		return nil, err
	}
	if len(b) > MaxLen {
		return nil, fmt.Errorf("%w: the checked form takes %d bytes, more than %d", ErrFilter, len(b), MaxLen)
	}
	return b, nil
}

// Decode parses and validates an encoded form. It never panics; errors
// wrap ErrFilter.
func Decode(b []byte) (*Node, error) {
	if len(b) > MaxLen {
		return nil, fmt.Errorf("%w: checked form of %d bytes, more than %d", ErrFilter, len(b), MaxLen)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f Form
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: malformed checked form: %s", ErrFilter, strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: malformed checked form: data after the form", ErrFilter)
	}
	if f.V != Version {
		return nil, fmt.Errorf("%w: checked form version %d, this program reads version %d", ErrFilter, f.V, Version)
	}
	if err := check(f.Expr); err != nil {
		return nil, err
	}
	return f.Expr, nil
}

// check validates a form's structure: known operators with their
// arities, a field name where one is needed, lists only as the right
// operand of "in", and the limits.
func check(root *Node) error {
	if root == nil {
		return fmt.Errorf("%w: checked form without an expression", ErrFilter)
	}
	nodes := 0
	var walk func(n *Node, depth int, listOK bool) error
	walk = func(n *Node, depth int, listOK bool) error {
		if n == nil {
			return fmt.Errorf("%w: checked form: a null node", ErrFilter)
		}
		if nodes++; nodes > MaxNodes {
			return fmt.Errorf("%w: checked form of more than %d nodes", ErrFilter, MaxNodes)
		}
		if depth > MaxDepth {
			return fmt.Errorf("%w: checked form nested more than %d deep", ErrFilter, MaxDepth)
		}
		want, ok := arity[n.Op]
		if !ok {
			return fmt.Errorf("%w: checked form: unknown operator %q", ErrFilter, clip.String(n.Op, 40))
		}
		if conversions[n.Op] && len(n.Args) == 1 {
			want = 1
		}
		if want >= 0 && len(n.Args) != want {
			return fmt.Errorf("%w: checked form: %s takes %d operands, not %d", ErrFilter, n.Op, want, len(n.Args))
		}
		switch n.Op {
		case "field":
			if n.Field == "" {
				return fmt.Errorf("%w: checked form: a field without a name", ErrFilter)
			}
			if len(n.Field) > MaxConstLen {
				return fmt.Errorf("%w: checked form: a field name of %d bytes", ErrFilter, len(n.Field))
			}
		case "string", "bytes":
			if len(n.Str) > MaxConstLen || len(n.Bytes) > MaxConstLen {
				return fmt.Errorf("%w: checked form: a constant of more than %d bytes", ErrFilter, MaxConstLen)
			}
		case "double":
			if len(n.Args) == 0 && (math.IsNaN(n.Double) || math.IsInf(n.Double, 0)) {
				return fmt.Errorf("%w: checked form: a double constant that is not finite", ErrFilter)
			}
		case "list":
			if !listOK {
				return fmt.Errorf("%w: checked form: a list outside the right operand of in", ErrFilter)
			}
			for _, el := range n.Args {
				if el == nil || arity[el.Op] != 0 || el.Op == "field" || len(el.Args) != 0 {
					return fmt.Errorf("%w: checked form: list elements must be constants", ErrFilter)
				}
			}
		}
		for j, a := range n.Args {
			if err := walk(a, depth+1, n.Op == "in" && j == 1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, 1, false)
}

// Fields returns the names of the fields the form names, in the order of
// the expression, each once.
func Fields(root *Node) []string {
	var out []string
	var walk func(n *Node)
	walk = func(n *Node) {
		if n == nil {
			return
		}
		if n.Op == "field" && !slices.Contains(out, n.Field) {
			out = append(out, n.Field)
		}
		for _, a := range n.Args {
			walk(a)
		}
	}
	walk(root)
	return out
}
