package session

import (
	"fmt"
	"strings"

	"github.com/tracemark/tracemark/internal/filterform"
	"github.com/tracemark/tracemark/marker"
)

var (
	// ErrFilter is wrapped by errors about filter expressions: syntax,
	// unknown fields, type errors, an expression that is not a boolean, a
	// malformed checked form, CEL source in a program that does not link
	// CEL ([ErrFilterSource]), or one too expensive to run where markers
	// fire ([ErrFilterCost]).
	ErrFilter = filterform.ErrFilter
	// ErrFilterCost is wrapped by errors about filters whose static cost
	// bound exceeds the budget. It wraps [ErrFilter].
	ErrFilterCost = filterform.ErrFilterCost
	// ErrFilterSource is wrapped by the errors of filters given as CEL
	// source to a program that does not compile CEL: it evaluates the
	// checked forms that the tracemark command sends, and compiles source
	// only if it imports package session/celfilter. It wraps [ErrFilter].
	ErrFilterSource = fmt.Errorf("%w: CEL source needs package session/celfilter", ErrFilter)
)

// Filters. A rule's filter is a CEL expression; the program evaluates
// its checked form (internal/filterform), a small expression tree that
// the tracemark command compiles and type-checks with CEL and sends with
// the source, natively, without linking CEL. A program that imports
// session/celfilter compiles source itself: to the checked form when the
// form can express it, else to a CEL program. Either way the filter is
// type-checked and its cost bounded for each marker the rule records.

// filter is a rule's filter compiled for one marker.
type filter struct {
	src    string
	native filterform.Pred                        // nil: eval runs the CEL program
	eval   func(*marker.Event) filterform.Verdict // the CEL program
	cost   uint64                                 // the static bound, in units
	// unpinned is set if the filter allocates (a CEL program, a regular
	// expression), so that it cannot run pinned (see acceptPinned).
	unpinned bool
}

// filterLimits are what bounds a filter's cost.
type filterLimits struct {
	// maxString is the session's MaxStringLen: filters see string and byte
	// fields cut to it, as they are recorded.
	maxString int
	// runCost is the run-time cost limit of CEL programs; 0 selects
	// the budget. Tests lower it to reach the limit.
	runCost uint64
}

// compileFilter compiles a rule's filter for m: its checked form if it
// has one, else its source with the program's CEL compiler, if it links
// one. A filter whose cost bound exceeds the budget is refused.
func compileFilter(src string, form *filterform.Node, m *marker.Info, lim filterLimits) (*filter, error) {
	if form == nil {
		return compileSource(src, m, lim)
	}
	return compileForm(src, form, m, lim.maxString)
}

func compileForm(src string, form *filterform.Node, m *marker.Info, maxString int) (*filter, error) {
	c, err := filterform.Compile(form, m.Fields(), maxString)
	if err != nil {
		return nil, fmt.Errorf("filter %q on %s (fields: %s): %w", src, m.Name(), fieldList(m), err)
	}
	cost := filterform.Units(c.Ns)
	if cost > filterform.Budget {
		return nil, fmt.Errorf("filter %q on %s: %w: estimated cost up to %s, the limit is %d (a unit is up to %d ns); %s",
			src, m.Name(), ErrFilterCost, filterform.CostString(cost), filterform.Budget, filterform.UnitNs,
			filterform.Hint(form, maxString))
	}
	return &filter{src: src, native: c.Pred, cost: cost, unpinned: c.Allocates}, nil
}

func compileSource(src string, m *marker.Info, lim filterLimits) (*filter, error) {
	sc := filterform.Sources()
	if sc == nil {
		return nil, errNoCEL(src)
	}
	s, err := sc.Compile(src, m.Name(), m.Fields(), lim.maxString, lim.runCost)
	if err != nil {
		return nil, err
	}
	if s.Form != nil {
		if f, err := compileForm(src, s.Form, m, lim.maxString); err == nil {
			f.eval = s.Eval // for the differential test
			return f, nil
		}
	}
	return &filter{src: src, eval: s.Eval, cost: s.Cost, unpinned: true}, nil
}

// errNoCEL is the error of CEL source in a program without CEL.
func errNoCEL(src string) error {
	return fmt.Errorf("filter %q: %w: this program evaluates filters checked by the tracemark command; "+
		`to give it CEL source, import _ "github.com/tracemark/tracemark/session/celfilter"`, src, ErrFilterSource)
}

func fieldList(m *marker.Info) string {
	if m.NumFields() == 0 {
		return "none"
	}
	parts := make([]string, m.NumFields())
	for i := range parts {
		parts[i] = m.Field(i).String()
	}
	return strings.Join(parts, ", ")
}

// verdict is a filter's answer for an event.
type verdict = filterform.Verdict

const (
	rejected = filterform.Rejected
	accepted = filterform.Accepted
	overCost = filterform.OverCost
)

// accept evaluates the filter for an event. An evaluation error (such as an
// integer overflow inside the expression) rejects the event: a filter that
// cannot say yes says no.
func (f *filter) accept(e *marker.Event) verdict {
	if f.native != nil {
		if f.native(e) {
			return accepted
		}
		return rejected
	}
	return f.eval(e)
}
