package otlp

import (
	"math"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
)

// The size that LogAt appends a record with is the size of the record:
// for every kind of value, lengths across varint boundaries, and trace
// and span ids; -1 (the slower path) only where it cannot tell cheaply.
func TestLogRecordLen(t *testing.T) {
	c := &Class{Name: "m:x", Fields: []Field{
		{"i", "int64"}, {"u", "uint64"}, {"b", "bool"}, {"f", "float64"}, {"s", "string"}, {"raw", "bytes"},
		{"trace", "trace_id"}, {"span", "span_id"},
	}}
	c.prepare()
	long := strings.Repeat("x", 200) // a length of two varint bytes
	for _, vals := range [][]ctf.Value{
		{ctf.IntValue(0), ctf.UintValue(0), ctf.UintValue(1), ctf.FloatValue(0.5), ctf.StringValue(""), ctf.BytesValue(nil)},
		{ctf.IntValue(-1), ctf.UintValue(math.MaxInt64), ctf.UintValue(0), ctf.FloatValue(-1e300), ctf.StringValue(long), ctf.BytesValue([]byte(long))},
		{ctf.IntValue(math.MinInt64), ctf.UintValue(127), ctf.UintValue(1), ctf.FloatValue(0), ctf.StringValue("GET"), ctf.BytesValue([]byte{0}),
			ctf.BytesValue(make([]byte, 16)), ctf.BytesValue(make([]byte, 8))},
		{ctf.IntValue(128), ctf.UintValue(1 << 40), ctf.UintValue(0), ctf.FloatValue(1), ctf.StringValue(strings.Repeat("y", 20000)), ctf.BytesValue(nil),
			ctf.BytesValue(make([]byte, 16))},
		{ctf.IntValue(1)}, // fewer values than fields
	} {
		want, _ := appendLogRecord(nil, nil, c, 1, 2, vals, 0)
		if got := logRecordLen(c, vals, 0); got != len(want) {
			t.Errorf("%v: logRecordLen %d, the record has %d bytes", vals, got, len(want))
		}
	}
	big := []ctf.Value{ctf.IntValue(0), ctf.UintValue(math.MaxInt64 + 1)}
	if n := logRecordLen(c, big, 0); n != -1 {
		t.Errorf("an unsigned value sent as text: %d, want -1", n)
	}
	if n := logRecordLen(c, []ctf.Value{ctf.IntValue(0)}, 1); n != -1 {
		t.Errorf("truncated: %d, want -1", n)
	}
}
