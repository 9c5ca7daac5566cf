package marker

import (
	"context"
	"runtime/trace"
	"strconv"
	"time"
)

// goTraceLog writes an event of an enabled marker to Go's execution
// tracer, which runs (runtime/trace.Start, or a trace.FlightRecorder):
// a log event on the firing goroutine with the marker's name as category
// and its fields as message, rendered after the marker's format
// ("method=GET status=200 latency=1.5ms"), so that `go tool trace` shows
// it on the goroutine's timeline. dispatch calls it only when
// trace.IsEnabled, so a disabled marker's Fire is unchanged and an
// enabled one pays one more load while the Go tracer is off.
func goTraceLog(e *Event) {
	var buf [256]byte
	trace.Log(context.Background(), e.info.def.name, string(appendEventText(buf[:0], e)))
}

// appendEventText appends "name=value" for each field of e, separated by
// spaces, with the conversions of the marker's format: %d, %u, %g, %t,
// %v (durations), %s and %x.
func appendEventText(b []byte, e *Event) []byte {
	for i := range e.NumFields() {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, e.info.def.fields[i].Name...)
		b = append(b, '=')
		v := e.Field(i)
		switch k := v.Kind(); {
		case k == KindDuration:
			b = append(b, time.Duration(v.Int()).String()...)
		case k == KindBool:
			b = strconv.AppendBool(b, v.Bool())
		case k.Unsigned():
			b = strconv.AppendUint(b, v.Uint(), 10)
		case k.Signed():
			b = strconv.AppendInt(b, v.Int(), 10)
		case k.Float():
			b = strconv.AppendFloat(b, v.Float(), 'g', -1, 64)
		case k == KindString:
			b = append(b, v.Str()...)
		case k == KindBytes:
			const hex = "0123456789abcdef"
			for _, c := range v.Bytes() {
				b = append(b, hex[c>>4], hex[c&0xf])
			}
		}
	}
	return b
}
