package session

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/tracemark/tracemark/marker"
)

// ErrFilter is wrapped by errors about filter expressions: syntax, unknown
// fields, type errors, or an expression that is not a boolean.
var ErrFilter = errors.New("invalid filter")

// filter is a filter expression compiled and type-checked against one
// marker's schema. Filters are CEL expressions (cel.dev) over the marker's
// fields, such as `status >= 500 && path.startsWith("/api")`.
type filter struct {
	src    string
	prg    cel.Program
	native pred // nil when the expression is outside the native subset
	info   *marker.Info
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

// compileFilter type-checks src against m's fields.
func compileFilter(src string, m *marker.Info) (*filter, error) {
	opts := make([]cel.EnvOption, 0, m.NumFields())
	for i := range m.NumFields() {
		f := m.Field(i)
		opts = append(opts, cel.Variable(f.Name, celType(f.Kind)))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("filter %q on %s: %w: %v", src, m.Name(), ErrFilter, err)
	}
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("filter %q on %s (fields: %s): %w: %s",
			src, m.Name(), fieldList(m), ErrFilter, oneLine(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("filter %q on %s: %w: the expression is %v, not bool",
			src, m.Name(), ErrFilter, ast.OutputType())
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("filter %q on %s: %w: %v", src, m.Name(), ErrFilter, err)
	}
	native, _ := compileNative(ast, m)
	return &filter{src: src, prg: prg, native: native, info: m}, nil
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

// accept evaluates the filter for an event. An evaluation error (such as an
// integer overflow inside the expression) rejects the event: a filter that
// cannot say yes says no.
func (f *filter) accept(e *marker.Event) bool {
	if f.native != nil {
		return f.native(e)
	}
	return f.acceptCEL(e)
}

// acceptCEL evaluates the filter with the CEL program.
func (f *filter) acceptCEL(e *marker.Event) bool {
	out, _, err := f.prg.Eval(eventVars{e})
	if err != nil {
		return false
	}
	b, ok := out.(types.Bool)
	return ok && bool(b)
}

// eventVars resolves filter variables to the event's field values.
type eventVars struct{ e *marker.Event }

func (a eventVars) ResolveName(name string) (any, bool) {
	v, ok := a.e.FieldByName(name)
	if !ok {
		return nil, false
	}
	switch k := v.Kind(); {
	case k == marker.KindDuration:
		return types.Duration{Duration: time.Duration(v.Int())}, true
	case k.Signed():
		return types.Int(v.Int()), true
	case k.Unsigned():
		return types.Uint(v.Uint()), true
	case k.Float():
		return types.Double(v.Float()), true
	case k == marker.KindBool:
		return types.Bool(v.Bool()), true
	case k == marker.KindString:
		return types.String(v.Str()), true
	case k == marker.KindBytes:
		return types.Bytes(v.Bytes()), true
	case k == marker.KindTraceID, k == marker.KindSpanID:
		return types.Bytes(v.ID()), true
	}
	return nil, false
}

func (a eventVars) Parent() interpreter.Activation { return nil }
