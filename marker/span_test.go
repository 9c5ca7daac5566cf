package marker_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/tracemark/tracemark/marker"
)

func TestSpanDeclarations(t *testing.T) {
	m := marker.Define2("spantest:query", marker.String("op"), marker.Duration("latency"), marker.SpanDuration("latency"))
	if got := m.Info().Span(); got == nil || got.Duration != "latency" || got.Start != "" {
		t.Errorf("SpanDuration: %+v", got)
	}
	e := marker.Define2("spantest:job_done", marker.String("job"), marker.Int("failed"), marker.SpanEnd("spantest:job_start", "job"))
	if got := e.Info().Span(); got == nil || !reflect.DeepEqual(*got, marker.SpanDecl{Start: "spantest:job_start", Keys: []string{"job"}}) {
		t.Errorf("SpanEnd: %+v", got)
	}
	if marker.Define1("spantest:plain", marker.Int("n")).Info().Span() != nil {
		t.Error("a marker without a declaration has one")
	}
	for _, bad := range []struct {
		fields []marker.FieldInfo
		opt    marker.Option
	}{
		{[]marker.FieldInfo{{Name: "latency", Kind: marker.KindInt64}}, marker.SpanDuration("latency")}, // not a duration
		{[]marker.FieldInfo{{Name: "op", Kind: marker.KindString}}, marker.SpanDuration("latency")},     // no such field
		{[]marker.FieldInfo{{Name: "op", Kind: marker.KindString}}, marker.SpanEnd("x:start", "id")},    // no key field
		{nil, marker.SpanEnd("")},
	} {
		if _, err := marker.DefineDynamic("spantest:bad", bad.fields, bad.opt); !errors.Is(err, marker.ErrSpanDecl) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
