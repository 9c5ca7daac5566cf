package session_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

// traceID and spanID are what OpenTelemetry's trace.TraceID and
// trace.SpanID are: named byte arrays, passed to Fire as they are.
type (
	traceID [16]byte
	spanID  [8]byte
)

var rpcDone = marker.Define4("stest_rpc:done", marker.Int("status"),
	marker.TraceID("trace_id"), marker.SpanID("span_id"), marker.String("method"))

// Trace and span ids are recorded as fixed-size CTF arrays, exactly, and
// can be filtered on as bytes.
func TestTraceAndSpanIDs(t *testing.T) {
	s := newSession(t)
	tid := traceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	sid := spanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	mustEnable(t, s, "stest_rpc:*", `span_id != b"\x00\x00\x00\x00\x00\x00\x00\x00"`)
	dir := filepath.Join(t.TempDir(), "trace")
	tw, err := session.CreateTrace(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	rpcDone.Fire(200, tid, sid, "Get")
	rpcDone.Fire(500, tid, spanID{}, "Put") // filtered out
	for range 100 {
		rpcDone.Fire(201, tid, sid, "Get")
	}
	s.Stop()
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Class == nil {
			continue
		}
		if n == 0 && (ev.Fields[0].Int != 200 || !bytes.Equal(ev.Fields[1].Bytes, tid[:]) ||
			!bytes.Equal(ev.Fields[2].Bytes, sid[:]) || string(ev.Fields[3].Bytes) != "Get") {
			t.Errorf("event %v", ev.Fields)
		}
		if ev.Fields[0].Int == 500 {
			t.Error("the filter on span_id did not filter")
		}
		n++
	}
	if n != 101 {
		t.Errorf("%d events in the trace, want 101", n)
	}
}

func TestTraceIDsRecordedWithoutAllocation(t *testing.T) {
	if traceIDRace {
		t.Skip("the race detector allocates")
	}
	s := newSession(t)
	mustEnable(t, s, "stest_rpc:*", "")
	s.Start()
	tid, sid := traceID{1, 2, 3}, spanID{4, 5}
	allocs := testing.AllocsPerRun(1000, func() { rpcDone.Fire(201, tid, sid, "Get") })
	if allocs != 0 {
		t.Errorf("recording an event with ids allocates %v times", allocs)
	}
	s.Stop()
	if st := s.Stats(); st.Recorded < 1000 {
		t.Fatalf("recorded %d events", st.Recorded)
	}
}
