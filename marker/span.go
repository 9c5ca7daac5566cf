package marker

import (
	"errors"
	"fmt"
	"slices"
)

// SpanDecl says how a marker's events become spans for exporters such as
// OpenTelemetry's (tracemark record --otlp): either each event is a span
// whose length is a duration field, or the marker ends spans that the
// events of another marker start. Recording is unchanged: events are
// recorded as always, and an exporter pairs them.
type SpanDecl struct {
	// Duration names a duration field: each event is a span that ends at
	// the event and lasted that long.
	Duration string
	// Start names the marker whose events start the spans that this
	// marker's events end; Keys are the fields, present in both markers,
	// whose equal values pair an end with its start (a request id, a job
	// name).
	Start string
	Keys  []string
}

// ErrSpanDecl is matched by the error (or panic) of a definition whose
// span declaration names fields the marker does not have.
var ErrSpanDecl = errors.New("invalid span declaration")

type spanOption SpanDecl

func (o spanOption) apply(d *definition) {
	s := SpanDecl(o)
	s.Keys = slices.Clone(s.Keys)
	d.span = &s
}

// SpanDuration declares each event of the marker a span that ends when
// the event fires and lasted as long as its duration field says:
//
//	done := marker.Define2("storage:query", marker.String("op"), marker.Duration("latency"),
//		marker.SpanDuration("latency"))
func SpanDuration(field string) Option { return spanOption{Duration: field} }

// SpanEnd declares the marker's events the ends of spans started by the
// events of marker start that have the same values in the key fields
// (which both markers must have):
//
//	start := marker.Define1("batch:job_start", marker.String("job"))
//	done := marker.Define2("batch:job_done", marker.String("job"), marker.Int("failed"),
//		marker.SpanEnd("batch:job_start", "job"))
func SpanEnd(start string, keys ...string) Option {
	return spanOption{Start: start, Keys: keys}
}

// Span returns the marker's span declaration, or nil if it has none.
func (m *Info) Span() *SpanDecl {
	if m.def.span == nil {
		return nil
	}
	s := *m.def.span
	s.Keys = slices.Clone(s.Keys)
	return &s
}

// checkSpan checks a span declaration against the marker's own fields
// (the start marker's are checked by the exporter, which may see the
// start marker defined later).
func checkSpan(d *definition) error {
	s := d.span
	if s == nil {
		return nil
	}
	has := func(name string, kind Kind) bool {
		for _, f := range d.fields {
			if f.Name == name && (kind == KindInvalid || f.Kind == kind) {
				return true
			}
		}
		return false
	}
	switch {
	case s.Duration != "" && !has(s.Duration, KindDuration):
		return fmt.Errorf("marker %q: %w: no duration field %q", d.name, ErrSpanDecl, s.Duration)
	case s.Duration == "" && s.Start == "":
		return fmt.Errorf("marker %q: %w: name a duration field or a start marker", d.name, ErrSpanDecl)
	}
	for _, k := range s.Keys {
		if !has(k, KindInvalid) {
			return fmt.Errorf("marker %q: %w: no key field %q", d.name, ErrSpanDecl, k)
		}
	}
	return nil
}
