package marker

import "unsafe"

// TraceID declares a field holding a 16-byte trace id, such as
// OpenTelemetry's trace.TraceID (whose underlying type is [16]byte, so
// that sc.TraceID() is passed as it is):
//
//	done := marker.Define3("http:request_done", marker.Int("status"),
//		marker.TraceID("trace_id"), marker.SpanID("span_id"))
//	sc := trace.SpanContextFromContext(ctx)
//	done.Fire(status, sc.TraceID(), sc.SpanID())
//
// Exporters put it into the trace id of what they export, so that back
// ends link the event to the program's own traces.
func TraceID(name string) Field[[16]byte] { return Field[[16]byte]{name, KindTraceID} }

// SpanID declares a field holding an 8-byte span id, such as
// OpenTelemetry's trace.SpanID.
func SpanID(name string) Field[[8]byte] { return Field[[8]byte]{name, KindSpanID} }

// ID returns the bytes of a trace id or span id value, or nil for other
// kinds. The slice is valid only during the probe call and must not be
// modified.
func (v Value) ID() []byte {
	switch v.kind {
	case KindTraceID:
		return (*[16]byte)(v.p)[:]
	case KindSpanID:
		return (*[8]byte)(v.p)[:]
	}
	return nil
}

// TraceIDValue returns a trace id value, for [Dynamic.Fire].
func TraceIDValue(x [16]byte) Value { return Value{kind: KindTraceID, p: unsafe.Pointer(&x)} }

// SpanIDValue returns a span id value, for [Dynamic.Fire].
func SpanIDValue(x [8]byte) Value { return Value{kind: KindSpanID, p: unsafe.Pointer(&x)} }
