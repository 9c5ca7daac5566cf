package filterform

import (
	"math"
	"strconv"
	"strings"
)

// Filter cost. A filter runs in the goroutine that fires the marker, so a
// costly one slows the traced program down. Its cost on any event is
// bounded statically, with string and byte fields at most maxString
// bytes long (filters see them cut to that), and a filter whose bound
// exceeds Budget units is refused with ErrFilterCost. The budget makes
// the most expensive filter accepted take at most 2 µs per event
// (BenchmarkFilterMostExpensiveAccepted in package session); docs/design.md
// says how it was chosen.
const (
	// Budget is the most a filter may cost, in units.
	Budget = 20
	// UnitNs is what a unit is worth, in ns.
	UnitNs = 100
)

// The compiled closures take a few ns each whatever they do, but for
// string searches and comparisons, which scan up to the length of their
// strings, size of a string (it counts runes), and regular expressions
// (measured worst cases, Go 1.26 on amd64):
//
//   - contains: strings.Index takes up to about 0.8 ns per byte of input
//     whatever the needle's length below 64 bytes (see containsNs).
//   - matches: Go's regexp takes up to 10 ns per byte of input and per
//     character of pattern (patterns such as `(a|aa)+b` on 1 KiB of "a").
//     With 1 KiB strings, a regular expression over a string field does
//     not fit the budget.
//   - size of a string: up to 1.5 ns per byte (1 KiB of "é").
//
// Per node (BenchmarkNodes, CPU time, with some margin): a boolean
// operator or comparison 3 ns, reading a field or a constant that is not
// a bool 2, integer + - and negation 4, * / % 6 (overflow and zero
// checks).
const (
	nodeNs             = 3
	leafNs             = 2
	addNs              = 4
	mulNs              = 6
	compareNsPerByte   = 1.0 / 8 // per byte of the shorter string
	scanNsPerByte      = 1.5
	regexNsPerByteChar = 10
)

// opNs is what an operator node takes besides its operands.
func opNs(op string) float64 {
	switch op {
	case "add", "sub", "neg":
		return addNs
	case "mul", "div", "mod":
		return mulNs
	}
	return nodeNs
}

// ScanNsPerByte is what counting runes or parsing a string takes per byte,
// at most: the CEL estimator charges it too.
const ScanNsPerByte = scanNsPerByte

// RegexNsPerByteChar is what Go's regexp takes per byte of input and
// character of pattern, at most.
const RegexNsPerByteChar = regexNsPerByteChar

// ContainsNs bounds what strings.Contains takes to search n bytes for a
// needle of m bytes, in ns. Its cost steps with the needle's length, as
// strings.Index picks its method: measured at most 0.02 ns per byte of
// input for one byte, 0.33 for 2 to 11 bytes, 0.76 for 12 to 63 and 1.5
// and more past that (CPU time, 1 KiB of "a", needles "a…ab"); these are
// those figures with some margin. The bound grows with m up to n, so a
// needle of at most m bytes costs at most ContainsNs(n, min(m, n)).
func ContainsNs(n, m uint64) float64 {
	switch {
	case m == 0 || m > n:
		return 0
	case m == 1:
		return float64(n) / 16 // IndexByte
	case m < 12:
		return float64(n) * 0.4
	case m < 64:
		return float64(n) * 0.8
	}
	return float64(n) * 4 // Rabin-Karp
}

// containsNs bounds a search of a string of at most n bytes for one of at
// most m bytes.
func containsNs(n, m int) float64 {
	return ContainsNs(uint64(n), uint64(min(m, n)))
}

// regexNs bounds a match of a string of at most n bytes with a pattern of
// m bytes.
func regexNs(n, m int) float64 {
	return float64(n+1) * float64(m) * regexNsPerByteChar
}

// Units converts ns to cost units, rounding up and saturating.
func Units(ns float64) uint64 {
	u := math.Ceil(ns / UnitNs)
	if u >= math.MaxUint64 || math.IsNaN(u) {
		return math.MaxUint64
	}
	return uint64(u)
}

// CostString prints an estimate, which saturates at the largest uint64.
func CostString(n uint64) string {
	if n == math.MaxUint64 {
		return "unbounded"
	}
	return strconv.FormatUint(n, 10)
}

// Hint says what makes a form expensive, from what it contains.
func Hint(root *Node, maxString int) string {
	var regexes, strs bool
	var walk func(n *Node)
	walk = func(n *Node) {
		if n == nil {
			return
		}
		switch n.Op {
		case "matches":
			regexes = true
		case "contains", "startsWith", "endsWith", "size", "eq", "lt", "le", "gt", "ge", "ne", "in":
			strs = true
		}
		for _, a := range n.Args {
			walk(a)
		}
	}
	walk(root)
	return HintFor(false, regexes, strs, maxString)
}

// HintFor says what makes a filter expensive, from whether it has
// comprehensions, regular expressions and string operations.
func HintFor(comprehensions, regexes, strs bool, maxString int) string {
	var hints []string
	if comprehensions {
		hints = append(hints, "a comprehension (all, exists, exists_one, map, filter) multiplies the cost of its body by the length of its list")
	}
	if regexes {
		hints = append(hints, "a regular expression costs the length of its input, up to "+
			strconv.Itoa(maxString)+" bytes for a string field, times the length of the pattern; prefer startsWith, endsWith or contains")
	}
	if len(hints) == 0 && strs {
		hints = append(hints, "string functions cost in proportion to the length of their strings, up to "+
			strconv.Itoa(maxString)+" bytes for a string field")
	}
	if len(hints) == 0 {
		hints = append(hints, "simplify the expression")
	}
	return strings.Join(hints, "; ")
}
