package celfilter

import (
	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/tracemark/tracemark/internal/filterform"
	"github.com/tracemark/tracemark/marker"
)

// Filter cost with CEL (see filterform's cost.go for the budget). Filters
// in the checked form are bounded by the model of their closures; those
// outside it run on the CEL program, bounded with CEL's estimator, and
// carry the budget (less their fixed overhead) as their run-time cost
// limit: a program that reaches it is stopped and the event is dropped
// and counted (Stats.OverCost). Costs are in CEL's units, about one per
// node the interpreter evaluates, which take up to about
// filterform.UnitNs each with run-time cost tracking on.

// CEL's standard cost model charges one unit for calls it takes to be
// cheap and a tenth of a unit per byte for string scans. Some calls cost
// quite different amounts with Go's implementations (measured worst cases,
// Go 1.26 on amd64), and are charged what they take here:
//
//   - contains: strings.Index takes up to about 0.8 ns per byte of input
//     whatever the needle's length below 64 bytes (see containsNs), far
//     from the standard n×m/100 units.
//   - matches: Go's regexp takes up to 10 ns per byte of input and per
//     character of pattern (patterns such as `(a|aa)+b` on 1 KiB of "a").
//     With 1 KiB strings, a regular expression over a string field does not
//     fit the budget; over a short string, such as string(status), it does.
//   - size of a string (it counts runes) and conversions that parse a
//     string (int, uint, double, bool, duration, timestamp): up to 1.5 ns
//     per byte (size of 1 KiB of "é" takes 1.2 µs, double of 1 KiB of "0"
//     1.6 µs).
//
// And a CEL program takes about 500 ns whatever it does, with cost
// tracking, and reads copies of the string and byte fields it names (see
// eventVars), which take up to 0.5 ns per byte with the allocation and the
// collection they bring.
const (
	regexNsPerByteChar = filterform.RegexNsPerByteChar
	scanNsPerByte      = filterform.ScanNsPerByte
	celEvalNs          = 500
	copyNsPerByte      = 0.5
)

// units converts ns to cost units, rounding up.
func units(ns float64) uint64 { return filterform.Units(ns) }

// filterCoster gives CEL's cost estimator the sizes of a marker's string
// and byte fields and the cost of the calls above, and charges the same
// calls at run time.
type filterCoster struct {
	sized     map[string]bool // the string and byte fields
	maxString uint64
}

var (
	_ cost.Estimator           = (*filterCoster)(nil)
	_ cost.ActualCostEstimator = (*filterCoster)(nil)
)

func newFilterCoster(fields []marker.FieldInfo, maxString int) *filterCoster {
	c := &filterCoster{sized: map[string]bool{}, maxString: uint64(max(maxString, 0))}
	for _, f := range fields {
		if f.Kind == marker.KindString || f.Kind == marker.KindBytes {
			c.sized[f.Name] = true
		}
	}
	return c
}

// EstimateSize bounds the length of string and byte fields.
func (c *filterCoster) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if p := n.Path(); len(p) == 1 && c.sized[p[0]] {
		sz := cost.RangedSizeEstimate(0, c.maxString)
		return &sz
	}
	return nil
}

// EstimateCallCost estimates the calls that CEL's standard model charges
// too little for.
func (c *filterCoster) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	if target != nil {
		args = append([]cost.AstNode{*target}, args...)
	}
	switch {
	case overloadID == overloads.Matches || overloadID == overloads.MatchesString:
		if len(args) != 2 {
			return nil
		}
		in := cost.EstimateSize(c, args[0])
		re := cost.EstimateSize(c, args[1])
		return cost.NewCallEstimate(cost.RangedCostEstimate(
			regexCost(in.Min, re.Min), regexCost(in.Max, re.Max)), nil)
	case overloadID == overloads.ContainsString:
		if len(args) != 2 {
			return nil
		}
		in := cost.EstimateSize(c, args[0])
		needle := cost.EstimateSize(c, args[1])
		return cost.NewCallEstimate(cost.RangedCostEstimate(1, containsCost(in.Max, needle.Max)), nil)
	case isScan(overloadID):
		if len(args) != 1 {
			return nil
		}
		in := cost.EstimateSize(c, args[0])
		return cost.NewCallEstimate(cost.RangedCostEstimate(scanCost(in.Min), scanCost(in.Max)), nil)
	}
	if n, ok := formattedLen[overloadID]; ok {
		sz := cost.RangedSizeEstimate(1, n)
		return cost.NewCallEstimate(cost.FixedCostEstimate(1), &sz)
	}
	return nil
}

// formattedLen bounds the length of numbers, bools and durations formatted
// as strings, which CEL leaves unbounded: an int64 takes at most 20 bytes,
// a float64 in Go's shortest form 24, a duration at most 31 ("-" and 20
// digits of seconds, "." and 9 digits, "s").
var formattedLen = map[string]uint64{
	overloads.IntToString:      20,
	overloads.UintToString:     20,
	overloads.DoubleToString:   24,
	overloads.BoolToString:     5,
	overloads.DurationToString: 32,
}

// CallCost charges the same calls at run time.
func (c *filterCoster) CallCost(function, overloadID string, args []ref.Val, result ref.Val) *uint64 {
	var n uint64
	switch {
	case overloadID == overloads.Matches || overloadID == overloads.MatchesString:
		if len(args) != 2 {
			return nil
		}
		n = regexCost(byteLen(args[0]), byteLen(args[1]))
	case overloadID == overloads.ContainsString:
		if len(args) != 2 {
			return nil
		}
		n = containsCost(byteLen(args[0]), byteLen(args[1]))
	case isScan(overloadID):
		if len(args) != 1 {
			return nil
		}
		n = scanCost(byteLen(args[0]))
	case len(args) == 2 && isString(args[0]) && isString(args[1]):
		// CEL's trackers size strings by counting their runes, a scan of
		// each operand at every comparison; these are their charges with
		// sizes in bytes, which the estimates are in too.
		switch overloadID {
		case overloads.Equals, overloads.NotEquals,
			overloads.LessString, overloads.LessEqualsString, overloads.GreaterString, overloads.GreaterEqualsString,
			overloads.LessBytes, overloads.LessEqualsBytes, overloads.GreaterBytes, overloads.GreaterEqualsBytes:
			n = cost.SafeCeil(float64(min(byteLen(args[0]), byteLen(args[1]))) * cost.StringTraversalCostFactor)
		case overloads.AddString, overloads.AddBytes:
			n = cost.SafeCeil(float64(byteLen(args[0])+byteLen(args[1])) * cost.StringTraversalCostFactor)
		case overloads.StartsWithString, overloads.EndsWithString:
			n = cost.SafeCeil(float64(byteLen(args[1])) * cost.StringTraversalCostFactor)
		default:
			return nil
		}
	default:
		return nil
	}
	return &n
}

func isString(v ref.Val) bool {
	switch v.(type) {
	case types.String, types.Bytes:
		return true
	}
	return false
}

func isScan(overloadID string) bool {
	switch overloadID {
	case overloads.SizeString, overloads.SizeStringInst,
		overloads.StringToInt, overloads.StringToUint, overloads.StringToDouble,
		overloads.StringToBool, overloads.StringToDuration, overloads.StringToTimestamp:
		return true
	}
	return false
}

func regexCost(in, pattern uint64) uint64 {
	return cost.SafeAdd(1, units(float64(cost.SafeAdd(in, 1))*float64(pattern)*regexNsPerByteChar))
}

func scanCost(in uint64) uint64 {
	return cost.SafeAdd(1, units(float64(in)*scanNsPerByte))
}

func containsCost(in, needle uint64) uint64 {
	return cost.SafeAdd(1, units(filterform.ContainsNs(in, needle)))
}

// byteLen is the length in bytes of a string or bytes value (CEL's own
// size of a string counts runes, which is itself a scan).
func byteLen(v ref.Val) uint64 {
	switch v := v.(type) {
	case types.String:
		return uint64(len(v))
	case types.Bytes:
		return uint64(len(v))
	}
	return 1
}

// costHint says what makes a filter expensive, from what it contains.
func costHint(checked *cel.Ast, maxString int) string {
	var comprehensions, regexes, strs bool
	celast.PostOrderVisit(checked.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.ComprehensionKind:
			comprehensions = true
		case celast.CallKind:
			switch e.AsCall().FunctionName() {
			case "matches":
				regexes = true
			case "contains", "startsWith", "endsWith", "size", "_+_", "_==_", "_<_":
				strs = true
			}
		}
	}))
	return filterform.HintFor(comprehensions, regexes, strs, maxString)
}
