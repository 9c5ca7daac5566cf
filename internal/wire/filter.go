package wire

import "encoding/json"

// CheckedFilter is a filter in its checked form: the expression tree, as
// JSON, that the client compiled from the rule's CEL source and
// type-checked against the markers with CEL. The agent evaluates it
// natively, without linking CEL; it validates the form itself (it is
// hostile input like any other), type-checks it against each marker the
// rule records and bounds its cost. The form is
//
//	{"v": 1, "expr": NODE}
//
// where a NODE is {"op": OP, ...operands}: a constant ("bool", "int",
// "uint", "double", "string", "bytes", "duration" in ns, with the value
// in "bool", "int", "uint", "double", "str" or "bytes"), a field
// ({"op": "field", "field": "status"}), or an operator over "args" (and,
// or, not, cond, eq, ne, lt, le, gt, ge, add, sub, mul, div, mod, neg,
// in with a "list" of constants, size, startsWith, endsWith, contains,
// matches, and the int, uint and double conversions). For example
// `status >= 500` is
//
//	{"v":1,"expr":{"op":"ge","args":[{"op":"field","field":"status"},{"op":"int","int":500}]}}
//
// The package internal/filterform defines it and its limits.
type CheckedFilter = json.RawMessage

// MaxCheckedLen bounds a rule's checked filter, in bytes.
const MaxCheckedLen = 32 << 10
