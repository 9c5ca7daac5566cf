package agent_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/agent"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

func fireTicks(n int) {
	for i := range n {
		tick.Fire(i, []string{"a", "b", "c"}[i%3])
	}
}

func TestRecordStopDrainsEverything(t *testing.T) {
	_, c := startAgent(t)
	s, err := c.Record(ctx(t), wire.RecordRequest{
		Rules:         []wire.Rule{{Pattern: "agenttest:tick", Filter: `key != "c"`, Checked: checked(t, `key != "c"`)}, {Pattern: "agenttest:oth*"}},
		FlushInterval: "10ms", StatsInterval: "10ms", Client: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Hello.Recording == "" || s.Hello.PID == 0 || len(s.Hello.Matched) != 2 || s.Hello.Clock.Frequency != 1e9 {
		t.Errorf("hello = %+v", s.Hello)
	}
	// The session is listed as ephemeral while the stream lives.
	list, err := c.Sessions(ctx(t))
	if err != nil || len(list) != 1 || !list[0].Ephemeral || list[0].Client != "test" {
		t.Fatalf("sessions = %+v, %v", list, err)
	}
	fireTicks(300)
	other.Fire(7)
	if err := c.Stop(ctx(t), s.Hello.Recording); err != nil {
		t.Fatal(err)
	}
	got := collect(t, s)
	if got.end == nil || got.end.Reason != wire.EndStopped {
		t.Fatalf("end = %+v, want reason stopped", got.end)
	}
	if len(got.records) != 201 {
		t.Fatalf("got %d records, want 200 ticks and 1 other", len(got.records))
	}
	if got.records[0] != `agenttest:tick 0 "a"` || got.records[200] != "agenttest:other 7" {
		t.Errorf("records start with %q and end with %q", got.records[0], got.records[200])
	}
	st := got.end.Stats
	if st.Delivered != 201 || st.Filtered != 100 || st.Discarded != 0 {
		t.Errorf("final stats = %+v", st)
	}
	waitFor(t, "the ephemeral session to go", func() bool {
		list, err := c.Sessions(ctx(t))
		return err == nil && len(list) == 0
	})
}

func TestRecordClientGone(t *testing.T) {
	_, c := startAgent(t)
	s, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:*"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !tick.Info().Enabled() {
		t.Fatal("recording did not enable the marker")
	}
	s.Close()
	waitFor(t, "the session of a vanished client to be destroyed", func() bool {
		return !tick.Info().Enabled()
	})
	if list, err := c.Sessions(ctx(t)); err != nil || len(list) != 0 {
		t.Errorf("sessions = %+v, %v", list, err)
	}
}

func TestRecordDuration(t *testing.T) {
	_, c := startAgent(t)
	s, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Duration: "50ms"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fireTicks(10)
	got := collect(t, s)
	if got.end == nil || got.end.Reason != wire.EndDuration || len(got.records) != 10 {
		t.Errorf("end %+v with %d records, want reason duration and 10 records", got.end, len(got.records))
	}
}

func TestCloseEndsRecordings(t *testing.T) {
	a, c := startAgent(t)
	s, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fireTicks(5)
	done := make(chan collected)
	go func() { done <- collect(t, s) }()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.end == nil || got.end.Reason != wire.EndShutdown || len(got.records) != 5 {
		t.Errorf("end %+v with %d records, want reason shutdown and 5 records", got.end, len(got.records))
	}
}

func TestNamedSessionSnapshot(t *testing.T) {
	_, c := startAgent(t)
	si, err := c.Enable(ctx(t), "fr", wire.EnableRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Mode: "overwrite", Buffer: "64K"})
	if err != nil {
		t.Fatal(err)
	}
	if si.Mode != "overwrite" || si.State != "started" || len(si.Rules) != 1 {
		t.Errorf("session = %+v", si)
	}
	// Enabling again adds a rule; a different mode is a conflict.
	if _, err := c.Enable(ctx(t), "fr", wire.EnableRequest{Rules: []wire.Rule{{Pattern: "agenttest:other"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enable(ctx(t), "fr", wire.EnableRequest{Rules: []wire.Rule{{Pattern: "x:y"}}, Mode: "discard"}); !wire.IsCode(err, wire.CodeConflict) {
		t.Errorf("mode change: %v, want conflict", err)
	}
	// Far more than the buffer holds, however the events spread over the
	// shards (5000 could fit in two): the oldest are overwritten.
	fireTicks(20000)
	for range 2 { // a snapshot does not consume
		s, err := c.Snapshot(ctx(t), "fr")
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, s)
		s.Close()
		if got.end == nil || got.end.Reason != wire.EndSnapshot {
			t.Fatalf("end = %+v", got.end)
		}
		// Streams come one after the other: the newest event is in
		// the snapshot, not necessarily last.
		n := len(got.records)
		newest := slices.ContainsFunc(got.records, func(r string) bool { return strings.HasPrefix(r, "agenttest:tick 19999 ") })
		if n == 0 || n >= 20000 || !newest {
			t.Fatalf("snapshot of %d records (newest included: %v): want the newest, not all", n, newest)
		}
	}
	si, err = c.Disable(ctx(t), "fr", []string{"agenttest:tick"})
	if err != nil || len(si.Rules) != 1 || si.Rules[0].Pattern != "agenttest:other" {
		t.Fatalf("after disable: %+v, %v", si, err)
	}
	if err := c.Destroy(ctx(t), "fr"); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(ctx(t), "fr"); !wire.IsCode(err, wire.CodeNotFound) {
		t.Errorf("destroying twice: %v, want not_found", err)
	}
}

func TestMarkersList(t *testing.T) {
	_, c := startAgent(t)
	ms, err := c.Markers(ctx(t), "agenttest:*")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[1].Name != "agenttest:tick" || ms[1].Format != "i=%d key=%s" ||
		len(ms[1].Fields) != 2 || ms[1].Fields[1].Kind != "string" || ms[1].Doc != "fired by the tests" {
		t.Errorf("markers = %+v", ms)
	}
	if _, err := c.Markers(ctx(t), "[bad"); !wire.IsCode(err, wire.CodeBadPattern) {
		t.Errorf("bad glob: %v", err)
	}
}

// TestSlowClients checks the read timeout: a client that sends half a
// request is disconnected, and others are served meanwhile.
func TestSlowClients(t *testing.T) {
	a, c := startAgent(t, agent.WithTimeouts(200*time.Millisecond, 0))
	tests := []struct{ name, send string }{
		{"headers", "GET /v1/info HTTP/1.1\r\nHost: x\r\n"},
		{"body", "POST /v1/record HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"rules\":"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("unix", a.Socket())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(conn, tt.send)
			if _, err := c.Info(ctx(t)); err != nil {
				t.Fatalf("another client not served: %v", err)
			}
			// The agent answers (408 or a JSON 400) or just hangs up;
			// either way it does so without waiting for the client.
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err == nil {
				t.Logf("answered %s", resp.Status)
				if resp.StatusCode < 400 {
					t.Errorf("status %s", resp.Status)
				}
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("agent did not hang up on a slow client")
			}
		})
	}
}

func TestConnectionLimit(t *testing.T) {
	a, c := startAgent(t, agent.WithMaxConns(2))
	var held []net.Conn
	for range 2 {
		conn, err := net.Dial("unix", a.Socket())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		held = append(held, conn)
	}
	// Both slots are taken by silent clients: the next one is turned away.
	_, err := c.Info(ctx(t))
	if !wire.IsCode(err, wire.CodeUnavailable) {
		t.Fatalf("third connection: %v, want unavailable", err)
	}
	for _, conn := range held {
		conn.Close()
	}
	waitFor(t, "slots to be released", func() bool {
		_, err := c.Info(ctx(t))
		return err == nil
	})
}

func TestRecordingLimit(t *testing.T) {
	// Room for MaxRecordings default buffers however many CPUs there are.
	_, c := startAgent(t, memoryBudget(t, int64(agent.MaxRecordings*wire.DefaultBuffer*runtime.GOMAXPROCS(0))))
	var streams []*client.Stream
	defer func() {
		for _, s := range streams {
			s.Close()
		}
	}()
	for i := range agent.MaxRecordings + 1 {
		s, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}})
		if i < agent.MaxRecordings {
			if err != nil {
				t.Fatalf("recording %d: %v", i, err)
			}
			streams = append(streams, s)
			continue
		}
		if !wire.IsCode(err, wire.CodeLimit) {
			t.Fatalf("recording %d: %v, want limit_exceeded", i, err)
		}
	}
}

// TestRecordThreadID: a recording that asks for thread ids gets, in every
// record, the id of the thread that fired it; a named session keeps the
// choice it was created with.
func TestRecordThreadID(t *testing.T) {
	needGettid(t)
	_, c := startAgent(t)
	s, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Context: []string{"vtid"}, FlushInterval: "10ms"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !slices.Equal(s.Hello.Context, []string{"vtid"}) {
		t.Fatalf("hello of a recording with thread ids: context %q", s.Hello.Context)
	}
	tids := make(chan uint32, 2)
	for range 2 {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			fireTicks(50)
			tids <- uint32(gettid())
		}()
	}
	a, b := <-tids, <-tids
	if err := c.Stop(ctx(t), s.Hello.Recording); err != nil {
		t.Fatal(err)
	}
	got := collect(t, s)
	if len(got.records) != 100 {
		t.Fatalf("got %d records, want 100", len(got.records))
	}
	per := map[uint32]int{}
	for _, id := range got.tids {
		per[id]++
	}
	if a == b && per[a] != 100 || a != b && (per[a] != 50 || per[b] != 50) {
		t.Fatalf("records per thread %v; the threads were %d and %d", per, a, b)
	}

	// A recording without: no thread ids, and records as before.
	s2, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, FlushInterval: "10ms"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	fireTicks(3)
	if err := c.Stop(ctx(t), s2.Hello.Recording); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, s2); s2.Hello.Context != nil || len(got.records) != 3 || got.records[2] != `agenttest:tick 2 "c"` || got.tids[2] != 0 {
		t.Fatalf("recording without thread ids: hello %q, records %q, tids %v", s2.Hello.Context, got.records, got.tids)
	}

	if _, err := c.Enable(ctx(t), "plain", wire.EnableRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enable(ctx(t), "plain", wire.EnableRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Context: []string{"vtid"}}); !wire.IsCode(err, wire.CodeConflict) {
		t.Errorf("thread ids for a session made without: %v, want conflict", err)
	}
	if _, err := c.Enable(ctx(t), "tids", wire.EnableRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Mode: "overwrite", Context: []string{"vtid"}}); err != nil {
		t.Fatal(err)
	}
	// Another context for that session is a conflict too; none keeps its.
	if _, err := c.Enable(ctx(t), "tids", wire.EnableRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Context: []string{"pid", "vtid"}}); !wire.IsCode(err, wire.CodeConflict) {
		t.Errorf("context pid,vtid for a session made with vtid: %v, want conflict", err)
	}
	if _, err := c.Enable(ctx(t), "tids", wire.EnableRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}}); err != nil {
		t.Errorf("no context for a session made with vtid: %v", err)
	}
	fireTicks(5)
	snap, err := c.Snapshot(ctx(t), "tids")
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if got := collect(t, snap); !slices.Equal(snap.Hello.Context, []string{"vtid"}) || len(got.records) != 5 || slices.Contains(got.tids, 0) {
		t.Fatalf("snapshot of a session with thread ids: hello %q, %d records, tids %v", snap.Hello.Context, len(got.records), got.tids)
	}
}

// TestRecordEventContext: a recording that asks for pid, procname, cpu
// and tid gets them, in that order, in every record: the process's pid
// and program name, the record's stream and the firing thread; an
// unknown field is refused.
func TestRecordEventContext(t *testing.T) {
	needGettid(t)
	_, c := startAgent(t)
	want := []string{"pid", "procname", "cpu", "tid"}
	s, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Context: want, FlushInterval: "10ms"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !slices.Equal(s.Hello.Context, want) {
		t.Fatalf("hello context %q, want %q", s.Hello.Context, want)
	}
	tid := make(chan uint32)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		fireTicks(20)
		tid <- uint32(gettid())
	}()
	id := <-tid
	if err := c.Stop(ctx(t), s.Hello.Recording); err != nil {
		t.Fatal(err)
	}
	got := collect(t, s)
	if len(got.records) != 20 {
		t.Fatalf("got %d records, want 20", len(got.records))
	}
	for i, cx := range got.ctx {
		w := fmt.Sprintf("%d %s %d %d", os.Getpid(), filepath.Base(os.Args[0]), got.streams[i], id)
		if cx != w || got.tids[i] != id {
			t.Fatalf("record %d: context %q, thread %d; want %q", i, cx, got.tids[i], w)
		}
	}
	if _, err := c.Record(ctx(t), wire.RecordRequest{Rules: []wire.Rule{{Pattern: "agenttest:tick"}}, Context: []string{"ip"}}); !wire.IsCode(err, wire.CodeInvalid) {
		t.Errorf("context ip: %v, want invalid", err)
	}
}
