package session

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/tracemark/tracemark/marker"
)

var (
	// ErrFilter is wrapped by errors about filter expressions: syntax,
	// unknown fields, type errors, an expression that is not a boolean, or
	// one too expensive to run where markers fire ([ErrFilterCost]).
	ErrFilter = errors.New("invalid filter")
	// ErrFilterCost is wrapped by errors about filters whose static cost
	// estimate exceeds the budget. It wraps [ErrFilter].
	ErrFilterCost = fmt.Errorf("%w: too expensive", ErrFilter)
)

// filter is a filter expression compiled and type-checked against one
// marker's schema. Filters are CEL expressions (cel.dev) over the marker's
// fields, such as `status >= 500 && path.startsWith("/api")`.
type filter struct {
	src    string
	prg    cel.Program
	native pred // nil when the expression is outside the native subset
	info   *marker.Info
	cost   uint64 // the static estimate's upper bound, in CEL cost units
	// maxString cuts string and byte fields before the filter sees them,
	// which bounds what string functions cost (see filterLimits).
	maxString int
	// fields are the indices of the fields the expression names, and
	// names their names: what the CEL program reads (see eventVars).
	fields []int
	names  []string
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

// celType maps a field kind to the CEL type of the variable.
func celType(k marker.Kind) *cel.Type {
	switch {
	case k == marker.KindDuration:
		return cel.DurationType
	case k.Signed():
		return cel.IntType
	case k.Unsigned():
		return cel.UintType
	case k.Float():
		return cel.DoubleType
	case k == marker.KindBool:
		return cel.BoolType
	case k == marker.KindString:
		return cel.StringType
	case k == marker.KindBytes, k == marker.KindTraceID, k == marker.KindSpanID:
		return cel.BytesType
	}
	return cel.DynType
}

// compileFilter type-checks src against m's fields and refuses it if its
// static cost estimate exceeds the budget (see cost.go).
func compileFilter(src string, m *marker.Info, lim filterLimits) (*filter, error) {
	opts := make([]cel.EnvOption, 0, m.NumFields())
	for i := range m.NumFields() {
		f := m.Field(i)
		opts = append(opts, cel.Variable(f.Name, celType(f.Kind)))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("filter %q on %s: %w: %v", src, m.Name(), ErrFilter, err)
	}
	ast, iss := env.Compile(expandDurations(src)) // latency > 20ms (durlit.go)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("filter %q on %s (fields: %s): %w: %s",
			src, m.Name(), fieldList(m), ErrFilter, oneLine(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("filter %q on %s: %w: the expression is %v, not bool",
			src, m.Name(), ErrFilter, ast.OutputType())
	}
	coster := newFilterCoster(m, lim.maxString)
	est, err := env.EstimateCost(ast, coster)
	if err != nil {
		return nil, fmt.Errorf("filter %q on %s: %w: estimating its cost: %v", src, m.Name(), ErrFilter, err)
	}
	f := &filter{src: src, info: m, maxString: lim.maxString}
	f.fieldsNamed(ast, m)
	// Native filters take what their closures take, much less than the
	// CEL program, which only runs them in the differential test.
	estimate := cost.SafeAdd(est.Max, units(f.overheadNs()))
	native, nativeNs, ok := compileNative(ast, m, lim.maxString)
	if ok {
		estimate = units(nativeNs)
	}
	if estimate > filterBudget {
		return nil, fmt.Errorf("filter %q on %s: %w: estimated cost up to %s, the limit is %d (a unit is up to %d ns); %s",
			src, m.Name(), ErrFilterCost, costString(estimate), filterBudget, costUnitNs, costHint(ast, lim.maxString))
	}
	// A CEL program may take what the budget leaves besides its overhead,
	// which is at least its estimate.
	runCost := lim.runCost
	if runCost == 0 {
		runCost = filterBudget - units(f.overheadNs())
		if ok {
			runCost = max(runCost, est.Max)
		}
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize),
		cel.CostTracking(coster), cel.CostLimit(runCost))
	if err != nil {
		return nil, fmt.Errorf("filter %q on %s: %w: %v", src, m.Name(), ErrFilter, err)
	}
	f.prg, f.native, f.cost = prg, native, estimate
	return f, nil
}

// fieldsNamed sets the fields the expression names.
func (f *filter) fieldsNamed(checked *cel.Ast, m *marker.Info) {
	celast.PostOrderVisit(checked.NativeRep().Expr(), celast.NewExprVisitor(func(x celast.Expr) {
		if x.Kind() != celast.IdentKind {
			return
		}
		if i := m.FieldIndex(x.AsIdent()); i >= 0 && !slices.Contains(f.fields, i) {
			f.fields = append(f.fields, i)
			f.names = append(f.names, x.AsIdent())
		}
	}))
}

// overheadNs bounds what running the CEL program takes besides what CEL's
// estimator counts: its fixed cost, and copying the string and byte fields
// it reads.
func (f *filter) overheadNs() float64 {
	ns := float64(celEvalNs)
	for _, i := range f.fields {
		if k := f.info.Field(i).Kind; k == marker.KindString || k == marker.KindBytes {
			ns += float64(f.maxString) * copyNsPerByte
		}
	}
	return ns
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

// oneLine folds CEL's multi-line error (message, source line, caret) into
// one line for CLI output.
func oneLine(s string) string {
	lines := strings.Split(s, "\n")
	return strings.TrimSpace(lines[0])
}

// verdict is a filter's answer for an event.
type verdict uint8

const (
	rejected verdict = iota
	accepted
	// overCost: the CEL program reached its run-time cost limit and was
	// stopped, so the event is dropped (and counted as such).
	overCost
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
	return f.acceptCEL(e)
}

// acceptCEL evaluates the filter with the CEL program.
func (f *filter) acceptCEL(e *marker.Event) verdict {
	out, _, err := f.prg.Eval(f.vars(e))
	if err != nil {
		if isOverCost(err) {
			return overCost
		}
		return rejected
	}
	if b, ok := out.(types.Bool); ok && bool(b) {
		return accepted
	}
	return rejected
}

func isOverCost(err error) bool {
	var cancelled interpreter.EvalCancelledError
	return errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded
}

// eventVars are the values of the fields a filter names, copied out of an
// event. They cannot point into the event: it lives on the firing
// goroutine's stack, which CEL's heap-allocated frames and cost tracker
// must never reference (the stack moves when it grows), so strings and
// byte slices are copied too, cut to the session's MaxStringLen.
type eventVars struct {
	names  []string // the filter's fields, in vals order
	vals   []any
	inline [4]any // vals for filters that name up to 4 fields: one allocation
}

// vars copies the fields f names out of e.
func (f *filter) vars(e *marker.Event) *eventVars {
	a := &eventVars{names: f.names}
	if a.vals = a.inline[:]; len(f.fields) > len(a.inline) {
		a.vals = make([]any, len(f.fields))
	}
	a.vals = a.vals[:len(f.fields)]
	for j, i := range f.fields {
		a.vals[j] = celValue(e.Field(i), f.maxString)
	}
	return a
}

// celValue returns v as a CEL value that owns its memory.
func celValue(v marker.Value, max int) ref.Val {
	switch k := v.Kind(); {
	case k == marker.KindDuration:
		return types.Duration{Duration: time.Duration(v.Int())}
	case k.Signed():
		return types.Int(v.Int())
	case k.Unsigned():
		return types.Uint(v.Uint())
	case k.Float():
		return types.Double(v.Float())
	case k == marker.KindBool:
		return types.Bool(v.Bool())
	case k == marker.KindString:
		return types.String(strings.Clone(cutString(v.Str(), max)))
	case k == marker.KindBytes:
		b := v.Bytes()
		return types.Bytes(bytes.Clone(b[:min(len(b), max)]))
	case k == marker.KindTraceID, k == marker.KindSpanID:
		return types.Bytes(bytes.Clone(v.ID()))
	}
	return types.NullValue
}

// ResolveName returns the value of a field the filter names.
func (a *eventVars) ResolveName(name string) (any, bool) {
	for j, n := range a.names {
		if n == name {
			return a.vals[j], true
		}
	}
	return nil, false
}

// Parent returns nil: the fields are the only variables.
func (a *eventVars) Parent() interpreter.Activation { return nil }

// cutString returns s cut to max bytes, as a filter sees it.
func cutString(s string, max int) string {
	if len(s) > max {
		return s[:max]
	}
	return s
}
