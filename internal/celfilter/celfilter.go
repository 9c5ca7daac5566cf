// Package celfilter compiles filter expressions from CEL source: it
// type-checks them against a marker's fields with CEL (cel.dev), which
// names what is wrong ("undeclared reference to 'statsu'... did you mean
// 'status'?"), bounds their cost and turns them into the checked form of
// package filterform that the agent evaluates without CEL. The CLI uses it
// to check filters before it sends them; programs that compile CEL source
// themselves link it through package session/celfilter. Nothing the agent
// links by default imports it.
package celfilter

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

	"github.com/tracemark/tracemark/internal/filterform"
	"github.com/tracemark/tracemark/marker"
)

// ErrUnsupported is wrapped by the errors of Check about expressions that
// type-check but that the agent's evaluator cannot run. It wraps
// filterform.ErrFilter.
var ErrUnsupported = fmt.Errorf("%w: not supported by the agent", filterform.ErrFilter)

// Filter is a filter compiled from CEL source for one marker.
type Filter struct {
	// Form is the checked form, or nil if the expression is outside what
	// the agent evaluates; Why then says what it is.
	Form *filterform.Node
	Why  error
	// Native is Form compiled for the marker.
	Native *filterform.Compiled
	// Cost is the static cost bound in units: Native's if there is
	// one, else CEL's estimate with the program's overhead.
	Cost uint64

	prg       cel.Program
	fields    []int    // the fields the expression names
	names     []string // and their names
	kinds     []marker.Kind
	maxString int
}

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

// Compile type-checks src against the fields of marker name and refuses
// it if its static cost bound exceeds the budget (see cost.go); runCost,
// if not 0, overrides the run-time cost limit of the CEL program (tests
// lower it to reach the limit). Errors wrap filterform.ErrFilter, and
// filterform.ErrFilterCost for the cost.
func Compile(src, name string, fields []marker.FieldInfo, maxString int, runCost uint64) (*Filter, error) {
	opts := make([]cel.EnvOption, 0, len(fields))
	for _, f := range fields {
		opts = append(opts, cel.Variable(f.Name, celType(f.Kind)))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("filter %q on %s: %w: %v", src, name, filterform.ErrFilter, err)
	}
	ast, iss := env.Compile(expandDurations(src)) // latency > 20ms (durlit.go)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("filter %q on %s (fields: %s): %w: %s",
			src, name, fieldList(fields), filterform.ErrFilter, oneLine(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("filter %q on %s: %w: the expression is %v, not bool",
			src, name, filterform.ErrFilter, ast.OutputType())
	}
	coster := newFilterCoster(fields, maxString)
	est, err := env.EstimateCost(ast, coster)
	if err != nil {
		return nil, fmt.Errorf("filter %q on %s: %w: estimating its cost: %v", src, name, filterform.ErrFilter, err)
	}
	f := &Filter{maxString: maxString}
	f.fieldsNamed(ast, fields)
	estimate := cost.SafeAdd(est.Max, filterform.Units(f.overheadNs()))
	f.Form, f.Why = ToForm(ast.NativeRep().Expr())
	if f.Form != nil {
		if f.Native, f.Why = filterform.Compile(f.Form, fields, maxString); f.Why != nil {
			f.Form = nil
		}
	}
	if f.Native != nil {
		// Native filters take what their closures take, much less than
		// the CEL program, which only runs them in the differential test.
		estimate = filterform.Units(f.Native.Ns)
	}
	if estimate > filterform.Budget {
		return nil, fmt.Errorf("filter %q on %s: %w: estimated cost up to %s, the limit is %d (a unit is up to %d ns); %s",
			src, name, filterform.ErrFilterCost, filterform.CostString(estimate), filterform.Budget, filterform.UnitNs, costHint(ast, maxString))
	}
	// A CEL program may take what the budget leaves besides its overhead,
	// which is at least its estimate.
	if runCost == 0 {
		runCost = filterform.Budget - filterform.Units(f.overheadNs())
		if f.Native != nil {
			runCost = max(runCost, est.Max)
		}
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize),
		cel.CostTracking(coster), cel.CostLimit(runCost))
	if err != nil {
		return nil, fmt.Errorf("filter %q on %s: %w: %v", src, name, filterform.ErrFilter, err)
	}
	f.prg, f.Cost = prg, estimate
	return f, nil
}

// Check compiles src for the marker and returns its checked form, or an
// error: Compile's, or one wrapping ErrUnsupported that names what the
// agent's evaluator cannot run.
func Check(src, name string, fields []marker.FieldInfo, maxString int) (*filterform.Node, error) {
	f, err := Compile(src, name, fields, maxString, 0)
	if err != nil {
		return nil, err
	}
	if f.Form == nil {
		return nil, fmt.Errorf("filter %q on %s: %w: %v", src, name, ErrUnsupported, strings.TrimPrefix(f.Why.Error(), filterform.ErrFilter.Error()+": "))
	}
	return f.Form, nil
}

// fieldsNamed sets the fields the expression names.
func (f *Filter) fieldsNamed(checked *cel.Ast, fields []marker.FieldInfo) {
	celast.PostOrderVisit(checked.NativeRep().Expr(), celast.NewExprVisitor(func(x celast.Expr) {
		if x.Kind() != celast.IdentKind {
			return
		}
		i := slices.IndexFunc(fields, func(fi marker.FieldInfo) bool { return fi.Name == x.AsIdent() })
		if i >= 0 && !slices.Contains(f.fields, i) {
			f.fields = append(f.fields, i)
			f.names = append(f.names, x.AsIdent())
			f.kinds = append(f.kinds, fields[i].Kind)
		}
	}))
}

// overheadNs bounds what running the CEL program takes besides what CEL's
// estimator counts: its fixed cost, and copying the string and byte fields
// it reads.
func (f *Filter) overheadNs() float64 {
	ns := float64(celEvalNs)
	for _, k := range f.kinds {
		if k == marker.KindString || k == marker.KindBytes {
			ns += float64(f.maxString) * copyNsPerByte
		}
	}
	return ns
}

func fieldList(fields []marker.FieldInfo) string {
	if len(fields) == 0 {
		return "none"
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.String()
	}
	return strings.Join(parts, ", ")
}

// oneLine folds CEL's multi-line error (message, source line, caret) into
// one line for CLI output.
func oneLine(s string) string {
	lines := strings.Split(s, "\n")
	return strings.TrimSpace(lines[0])
}

// Eval evaluates the filter for an event with the CEL program. An
// evaluation error (such as an integer overflow inside the expression)
// rejects the event: a filter that cannot say yes says no. It allocates.
func (f *Filter) Eval(e *marker.Event) filterform.Verdict {
	out, _, err := f.prg.Eval(f.vars(e))
	if err != nil {
		if isOverCost(err) {
			return filterform.OverCost
		}
		return filterform.Rejected
	}
	if b, ok := out.(types.Bool); ok && bool(b) {
		return filterform.Accepted
	}
	return filterform.Rejected
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
func (f *Filter) vars(e *marker.Event) *eventVars {
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

// MissingFields returns the variables that the filter expression src
// names and that fields lacks, in the order of the expression. It returns
// nil for an expression that does not parse: Compile says what is wrong
// with it. Comprehension variables (the x of `tags.exists(x, x == "a")`)
// are not fields.
func MissingFields(src string, fields []marker.FieldInfo) []string {
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
	has := func(name string) bool {
		return slices.ContainsFunc(fields, func(f marker.FieldInfo) bool { return f.Name == name })
	}
	var out []string
	for _, id := range celast.MatchDescendants(root, celast.KindMatcher(celast.IdentKind)) {
		name := id.AsIdent()
		if !local[name] && !has(name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// Parse returns the checked form of src without type-checking it, for a
// pattern that no marker matches yet: the agent type-checks the form
// against the markers when they appear.
func Parse(src string) (*filterform.Node, error) {
	env, err := cel.NewEnv()
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w: %v", src, filterform.ErrFilter, err)
	}
	ast, iss := env.Parse(expandDurations(src))
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("filter %q: %w: %s", src, filterform.ErrFilter, oneLine(iss.Err().Error()))
	}
	n, err := ToForm(ast.NativeRep().Expr())
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w: %v", src, ErrUnsupported, strings.TrimPrefix(err.Error(), filterform.ErrFilter.Error()+": "))
	}
	return n, nil
}

// Register installs Compile and MissingFields as the process's CEL
// compiler (filterform.RegisterSource).
func Register() {
	filterform.RegisterSource(&filterform.SourceCompiler{
		Compile: func(src, name string, fields []marker.FieldInfo, maxString int, runCost uint64) (*filterform.Source, error) {
			f, err := Compile(src, name, fields, maxString, runCost)
			if err != nil {
				return nil, err
			}
			return &filterform.Source{Form: f.Form, Eval: f.Eval, Cost: f.Cost}, nil
		},
		MissingFields: MissingFields,
	})
}
