package session

import (
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"

	"github.com/tracemark/tracemark/marker"
)

// missingFields returns the variables that the filter expression src
// names and that m has no field for, in the order of the expression. It
// returns nil for an expression that does not parse: compileFilter says
// what is wrong with it. Comprehension variables (the x of
// `tags.exists(x, x == "a")`) are not fields.
func missingFields(src string, m *marker.Info) []string {
	env, err := cel.NewEnv()
	if err != nil {
		return nil
	}
	ast, iss := env.Parse(expandDurations(src))
	if iss != nil && iss.Err() != nil {
		return nil
	}
	root := celast.NavigateAST(ast.NativeRep())
	local := map[string]bool{}
	for _, c := range celast.MatchDescendants(root, celast.KindMatcher(celast.ComprehensionKind)) {
		comp := c.AsComprehension()
		local[comp.IterVar()], local[comp.AccuVar()] = true, true
		if comp.HasIterVar2() {
			local[comp.IterVar2()] = true
		}
	}
	var out []string
	for _, id := range celast.MatchDescendants(root, celast.KindMatcher(celast.IdentKind)) {
		name := id.AsIdent()
		if !local[name] && m.FieldIndex(name) < 0 && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// LeftOutError says why a rule leaves a marker out: its filter names
// fields the marker lacks. It wraps marker.ErrLeftOut and the compile
// error, which wraps ErrFilter; [Rule.Refused] returns it.
type LeftOutError struct {
	Marker  string   // the marker left out
	Missing []string // the fields the filter names that the marker lacks
	Err     error    // the compile error
}

func (e *LeftOutError) Error() string {
	return fmt.Sprintf("%s left out: it has no field %s: %v", e.Marker, strings.Join(e.Missing, ", "), e.Err)
}

// Unwrap returns marker.ErrLeftOut and the compile error.
func (e *LeftOutError) Unwrap() []error { return []error{marker.ErrLeftOut, e.Err} }

// leaveOut turns err, the error of compiling src for m, into a
// *LeftOutError when m lacks a field that src names: a rule whose glob
// matches markers with different fields records those that have them and
// leaves the others out, rather than failing.
func leaveOut(err error, src string, m *marker.Info) error {
	if err == nil {
		return nil
	}
	if missing := missingFields(src, m); len(missing) > 0 {
		return &LeftOutError{Marker: m.Name(), Missing: missing, Err: err}
	}
	return err
}
