package session_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

// newSession returns a session named after the test, destroyed when it
// ends.
func newSession(t *testing.T, opts ...session.Option) *session.Session {
	t.Helper()
	return newNamedSession(t, t.Name(), opts...)
}

// newNamedSession returns a session named name, destroyed when the test
// ends.
func newNamedSession(t *testing.T, name string, opts ...session.Option) *session.Session {
	t.Helper()
	s, err := session.New(name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Destroy)
	return s
}

func mustEnable(t *testing.T, s *session.Session, pattern, filter string) *session.Rule {
	t.Helper()
	r, err := s.Enable(pattern, filter)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var reqDone = marker.Define4("stest_http:request_done",
	marker.String("method"), marker.Int("status"), marker.String("path"), marker.Duration("latency"))
var cacheMiss = marker.Define2("stest_cache:miss", marker.String("key"), marker.Bytes("raw"))

func TestRecordsEventsWithValuesAndTimestamps(t *testing.T) {
	s := newSession(t)
	mustEnable(t, s, "stest_http:*", "")
	mustEnable(t, s, "stest_cache:miss", "")
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	before := uint64(session.Now())
	reqDone.Fire("GET", 200, "/a", time.Millisecond)
	cacheMiss.Fire("k1", []byte{1, 2, 3})
	reqDone.Fire("POST", 503, "/b", -2*time.Second)
	after := uint64(session.Now())
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	reqDone.Fire("GET", 200, "/after-stop", 0) // not recorded

	evs := drainAll(t, s)
	want := []struct {
		name string
		vals []any
	}{
		{"stest_http:request_done", []any{"GET", int64(200), "/a", int64(time.Millisecond)}},
		{"stest_cache:miss", []any{"k1", "\x01\x02\x03"}},
		{"stest_http:request_done", []any{"POST", int64(503), "/b", int64(-2 * time.Second)}},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, w := range want {
		e := evs[i]
		if e.class.Marker.Name() != w.name || fmt.Sprint(e.vals) != fmt.Sprint(w.vals) || e.trunc != 0 {
			t.Errorf("event %d: %s %v trunc %b, want %s %v", i, e.class.Marker.Name(), e.vals, e.trunc, w.name, w.vals)
		}
		if e.ts < before || e.ts > after || (i > 0 && e.ts < evs[i-1].ts && e.stream == evs[i-1].stream) {
			t.Errorf("event %d: timestamp %d outside [%d, %d] or going back", i, e.ts, before, after)
		}
	}
	st := s.Stats()
	if st.Recorded != 3 || st.Delivered != 3 || st.Discarded != 0 {
		t.Errorf("stats %+v", st)
	}
	wall := s.Clock().Add(time.Duration(evs[0].ts))
	if d := time.Since(wall); d < 0 || d > time.Minute {
		t.Errorf("wall clock of first event is %v ago", d)
	}
}

func TestFilterKeepsMatchingEvents(t *testing.T) {
	s := newSession(t)
	mustEnable(t, s, "stest_http:request_done", `status >= 500 && path.startsWith("/api")`)
	s.Start()
	reqDone.Fire("GET", 200, "/api/x", 0)
	reqDone.Fire("GET", 500, "/api/y", 0)
	reqDone.Fire("GET", 502, "/web", 0)
	reqDone.Fire("GET", 503, "/api/z", time.Second)
	s.Stop()
	evs := drainAll(t, s)
	if len(evs) != 2 || evs[0].vals[2] != "/api/y" || evs[1].vals[2] != "/api/z" {
		t.Fatalf("filtered events %+v", evs)
	}
	st := s.Stats()
	if st.Filtered != 2 || st.Markers[0].Filtered != 2 || st.Markers[0].Delivered != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestFilterOnDurationAndBytes(t *testing.T) {
	s := newSession(t)
	mustEnable(t, s, "stest_http:request_done", `latency > duration("1s")`)
	mustEnable(t, s, "stest_cache:miss", `size(raw) == 2 && key != "skip"`)
	s.Start()
	reqDone.Fire("GET", 200, "/slow", 2*time.Second)
	reqDone.Fire("GET", 200, "/fast", time.Millisecond)
	cacheMiss.Fire("a", []byte{1, 2})
	cacheMiss.Fire("skip", []byte{1, 2})
	cacheMiss.Fire("b", []byte{1})
	s.Stop()
	evs := drainAll(t, s)
	if len(evs) != 2 || evs[0].vals[2] != "/slow" || evs[1].vals[0] != "a" {
		t.Fatalf("events %+v", evs)
	}
}

// A duration literal such as 1s in a filter means duration("1s").
func TestFilterDurationLiterals(t *testing.T) {
	s := newSession(t)
	mustEnable(t, s, "stest_http:request_done", `latency > 1s && latency < 1m30s`)
	s.Start()
	reqDone.Fire("GET", 200, "/slow", 2*time.Second)
	reqDone.Fire("GET", 200, "/fast", time.Millisecond)
	reqDone.Fire("GET", 200, "/slowest", 2*time.Minute)
	s.Stop()
	evs := drainAll(t, s)
	if len(evs) != 1 || evs[0].vals[2] != "/slow" {
		t.Fatalf("events %+v, want /slow only", evs)
	}
}

func TestFilterErrorsNameMarkerAndField(t *testing.T) {
	s := newSession(t)
	tests := []struct {
		name, pattern, filter, want string
	}{
		{"unknown field", "stest_http:*", "stauts >= 500", "stest_http:request_done"},
		{"unknown field named", "stest_http:*", "stauts >= 500", "stauts"},
		{"type mismatch", "stest_http:*", `status == "500"`, "status " + reqDone.Info().Fields()[1].Kind.String()},
		{"not bool", "stest_http:*", "status + 1", "not bool"},
		{"syntax", "stest_http:*", "status >=", "Syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Enable(tt.pattern, tt.filter)
			if !errors.Is(err, session.ErrFilter) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Enable(%q, %q) = %v, want ErrFilter mentioning %q", tt.pattern, tt.filter, err, tt.want)
			}
		})
	}
	if len(s.Rules()) != 0 {
		t.Error("a refused rule was added")
	}
}

var lateRun atomic.Int32

func TestRulesApplyToMarkersDefinedLater(t *testing.T) {
	s := newSession(t)
	provider := fmt.Sprintf("stest_late%d", lateRun.Add(1)) // fresh names under -count
	mustEnable(t, s, provider+":*", "n > 1")
	s.Start()
	m := marker.Define1(provider+":event", marker.Int("n")) // defined after Start
	bad := marker.Define1(provider+":other", marker.String("n"))
	m.Fire(1)
	m.Fire(2)
	bad.Fire("x") // the filter does not type-check for it: refused, not recorded
	s.Stop()
	evs := drainAll(t, s)
	if len(evs) != 1 || evs[0].vals[0] != int64(2) {
		t.Errorf("events %+v", evs)
	}
	if r := s.Rules()[0].Refused(); len(r) != 1 || !strings.Contains(r[0].Error(), provider+":other") {
		t.Errorf("Refused() = %v", r)
	}
}

func TestTwoSessionsRecordTheSameMarker(t *testing.T) {
	a := newNamedSession(t, "a")
	b := newNamedSession(t, "b")
	mustEnable(t, a, "stest_http:*", "")
	mustEnable(t, b, "stest_http:*", "status == 404")
	a.Start()
	b.Start()
	reqDone.Fire("GET", 200, "/", 0)
	reqDone.Fire("GET", 404, "/x", 0)
	a.Stop()
	b.Stop()
	if ea, eb := drainAll(t, a), drainAll(t, b); len(ea) != 2 || len(eb) != 1 {
		t.Errorf("session a got %d events, b got %d; want 2 and 1", len(ea), len(eb))
	}
}

func TestOverlappingRulesRecordOnce(t *testing.T) {
	s := newSession(t)
	mustEnable(t, s, "stest_http:*", "status == 200")
	mustEnable(t, s, "stest_http:request_done", "status == 404")
	s.Start()
	reqDone.Fire("GET", 200, "/", 0)
	reqDone.Fire("GET", 404, "/", 0)
	reqDone.Fire("GET", 500, "/", 0)
	s.Stop()
	if evs := drainAll(t, s); len(evs) != 2 {
		t.Errorf("got %d events, want 2 (OR of the filters, each event once)", len(evs))
	}
}

func TestLongStringsAreTruncatedVisibly(t *testing.T) {
	s := newSession(t, session.WithMaxStringLen(4))
	mustEnable(t, s, "stest_cache:miss", "")
	s.Start()
	cacheMiss.Fire("abcdefgh", []byte("0123456789"))
	cacheMiss.Fire("ab\x00cd", []byte("01"))
	cacheMiss.Fire("abcd", []byte("0123"))
	s.Stop()
	evs := drainAll(t, s)
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	checks := []struct {
		key, raw string
		trunc    uint8
	}{{"abcd", "0123", 0b11}, {"ab", "01", 0b01}, {"abcd", "0123", 0}}
	for i, c := range checks {
		if evs[i].vals[0] != c.key || evs[i].vals[1] != c.raw || evs[i].trunc != c.trunc {
			t.Errorf("event %d: %v trunc %b, want %q %q %b", i, evs[i].vals, evs[i].trunc, c.key, c.raw, c.trunc)
		}
	}
	if st := s.Stats(); st.Truncated != 2 || st.Markers[0].Truncated != 2 {
		t.Errorf("Truncated %d / %d, want 2", st.Truncated, st.Markers[0].Truncated)
	}
}

func TestDisableStopsRecording(t *testing.T) {
	s := newSession(t)
	r := mustEnable(t, s, "stest_http:*", "")
	s.Start()
	reqDone.Fire("GET", 1, "/", 0)
	s.Disable(r)
	reqDone.Fire("GET", 2, "/", 0)
	s.Stop()
	if evs := drainAll(t, s); len(evs) != 1 {
		t.Errorf("got %d events after Disable, want 1", len(evs))
	}
	if reqDone.Enabled() {
		t.Error("marker still enabled with no session rule")
	}
}

func TestStateErrors(t *testing.T) {
	s := newSession(t)
	if s.State() != "created" {
		t.Errorf("state %s", s.State())
	}
	s.Start()
	if s.State() != "started" {
		t.Errorf("state %s", s.State())
	}
	s.Destroy()
	if err := s.Start(); !errors.Is(err, session.ErrState) {
		t.Errorf("Start after Destroy: %v", err)
	}
	if _, err := s.Enable("a:b", ""); !errors.Is(err, session.ErrState) {
		t.Errorf("Enable after Destroy: %v", err)
	}
	if _, err := session.New(""); err == nil {
		t.Error("nameless session accepted")
	}
	if _, err := session.New("x", session.WithBufferSize(100)); err == nil {
		t.Error("100-byte buffer accepted")
	}
	if _, err := session.New("x", session.WithMode(7)); err == nil || !strings.Contains(err.Error(), "unknown mode Mode(7)") {
		t.Errorf("mode 7: %v, want unknown mode Mode(7)", err)
	}
	if _, err := s.Enable("[", ""); !errors.Is(err, marker.ErrBadPattern) {
		t.Errorf("bad glob: %v", err)
	}
}

// TestCountersAreExactUnderStress fires from many goroutines into a small
// discard buffer while a reader drains, then checks that every event is
// accounted for: delivered + discarded + filtered == fired, per marker.
func TestCountersAreExactUnderStress(t *testing.T) {
	a := marker.Define2("stest_stress:a", marker.Int("g"), marker.String("s"))
	b := marker.Define1("stest_stress:b", marker.Int("g"))
	s := newSession(t, session.WithBufferSize(16<<10), session.WithSubBufSize(4<<10))
	mustEnable(t, s, "stest_stress:a", "g % 3 != 0")
	mustEnable(t, s, "stest_stress:b", "")
	s.Start()

	goroutinesBefore := runtime.NumGoroutine()
	const goroutines, perG = 16, 5000
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	var delivered [3]int // by class id
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Drain(func(p session.Packet) error {
				for _, e := range decodePacket(t, s, p) {
					delivered[e.class.ID]++
				}
				return nil
			})
			runtime.Gosched()
		}
	}()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				a.Fire(g, "payload")
				if i%2 == 0 {
					b.Fire(g)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readerDone
	s.Stop()
	s.Drain(func(p session.Packet) error {
		for _, e := range decodePacket(t, s, p) {
			delivered[e.class.ID]++
		}
		return nil
	})

	st := s.Stats()
	fired := map[string]uint64{"stest_stress:a": goroutines * perG, "stest_stress:b": goroutines * perG / 2}
	var totalDiscarded uint64
	for _, c := range s.Classes() {
		m := st.Markers[c.ID-1]
		if m.Delivered != uint64(delivered[c.ID]) {
			t.Errorf("%s: Delivered %d, reader saw %d", m.Name, m.Delivered, delivered[c.ID])
		}
		if got := m.Delivered + m.Discarded + m.Filtered; got != fired[m.Name] {
			t.Errorf("%s: delivered %d + discarded %d + filtered %d = %d, fired %d",
				m.Name, m.Delivered, m.Discarded, m.Filtered, got, fired[m.Name])
		}
		totalDiscarded += m.Discarded
	}
	if totalDiscarded == 0 {
		t.Error("nothing was discarded: the buffer is too big for this test to mean anything")
	}
	if st.Recorded+st.Discarded+st.Filtered != fired["stest_stress:a"]+fired["stest_stress:b"] {
		t.Errorf("session: recorded %d + discarded %d + filtered %d != fired", st.Recorded, st.Discarded, st.Filtered)
	}
	if st.Discarded != totalDiscarded {
		t.Errorf("session discarded %d, markers %d", st.Discarded, totalDiscarded)
	}
	if n := runtime.NumGoroutine(); n > goroutinesBefore {
		t.Errorf("%d goroutines before, %d after", goroutinesBefore, n)
	}
}

// TestDrainAfterFailedEmit checks that a packet handed back by a Drain
// whose emit failed, and a Snapshot of it, carry the same nanosecond
// timestamps as the first time (records hold raw clock ticks until a
// reader converts them in place, once) and that no event is counted twice.
func TestDrainAfterFailedEmit(t *testing.T) {
	s := newSession(t, session.WithMode(session.Overwrite))
	mustEnable(t, s, "stest_http:request_done", "")
	s.Start()
	before := uint64(session.Now())
	for i := range 10 {
		reqDone.Fire("GET", i, "/x", 0)
	}
	after := uint64(session.Now())
	inRange := func(what string, evs []event) {
		t.Helper()
		if len(evs) != 10 {
			t.Fatalf("%s: %d events, want 10", what, len(evs))
		}
		for i, e := range evs {
			if e.ts < before || e.ts > after {
				t.Errorf("%s: event %d has timestamp %d outside [%d, %d]", what, i, e.ts, before, after)
			}
		}
	}
	refused := errors.New("disk full")
	var first []event
	err := s.Drain(func(p session.Packet) error {
		first = append(first, decodePacket(t, s, p)...)
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("Drain: %v, want the emit error", err)
	}
	first = inTimeOrder(t, first)
	inRange("failed drain", first)
	var snap []event
	if err := s.Snapshot(func(p session.Packet) error {
		snap = append(snap, decodePacket(t, s, p)...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	snap = inTimeOrder(t, snap)
	inRange("snapshot after it", snap)
	s.Stop()
	again := drainAll(t, s)
	inRange("drain again", again)
	for i := range again {
		if again[i].ts != first[i].ts || snap[i].ts != first[i].ts {
			t.Errorf("event %d: timestamps %d, %d, %d in the three reads", i, first[i].ts, snap[i].ts, again[i].ts)
		}
	}
	if st := s.Stats(); st.Delivered != 10 || st.Markers[0].Delivered != 10 {
		t.Errorf("delivered %d (marker %d), want 10", st.Delivered, st.Markers[0].Delivered)
	}
}

// TestOverlappingRulesHandOver checks that when the rule recording a
// marker is disabled, another rule of the session that matches it takes
// over, with its own filter.
func TestOverlappingRulesHandOver(t *testing.T) {
	s := newSession(t)
	all := mustEnable(t, s, "stest_http:*", "")
	mustEnable(t, s, "stest_http:request_done", "status >= 500")
	s.Start()
	reqDone.Fire("GET", 200, "/", 0)
	reqDone.Fire("GET", 500, "/", 0)
	s.Disable(all)
	reqDone.Fire("GET", 201, "/", 0)
	reqDone.Fire("GET", 501, "/", 0)
	s.Stop()
	var got []any
	for _, e := range drainAll(t, s) {
		got = append(got, e.vals[1])
	}
	if want := []any{int64(200), int64(500), int64(501)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("recorded statuses %v, want %v", got, want)
	}
}

var reqStart = marker.Define2("stest_left:request_start", marker.String("method"), marker.String("path"))
var reqEnd = marker.Define2("stest_left:request_done", marker.String("method"), marker.Int("status"))

// A glob matching markers with different fields: those lacking a field
// the filter names are left out, listed by Refused, and the others are
// recorded; the README's `-e 'http:*' --filter 'status >= 500'`.
func TestFilterLeavesOutMarkersLackingItsFields(t *testing.T) {
	s := newSession(t)
	r := mustEnable(t, s, "stest_left:*", "status >= 500")
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	reqStart.Fire("GET", "/a")
	reqEnd.Fire("GET", 200)
	reqEnd.Fire("GET", 503)
	s.Stop()
	evs := drainAll(t, s)
	if len(evs) != 1 || evs[0].vals[1] != int64(503) {
		t.Errorf("events %+v, want the one with status 503", evs)
	}
	refused := r.Refused()
	if len(refused) != 1 || !errors.Is(refused[0], marker.ErrLeftOut) ||
		!strings.Contains(refused[0].Error(), "stest_left:request_start") {
		t.Errorf("Refused() = %v, want stest_left:request_start left out", refused)
	}
	// Restarting does not list it twice.
	s.Start()
	s.Stop()
	if n := len(r.Refused()); n != 1 {
		t.Errorf("after a restart Refused() has %d entries: %v", n, r.Refused())
	}
	// A field no marker has is refused: a typo.
	if _, err := s.Enable("stest_left:*", "stauts >= 500"); !errors.Is(err, session.ErrFilter) {
		t.Errorf("a field no marker has: %v, want ErrFilter", err)
	}
	// A type error on a marker that has the field is refused too.
	if _, err := s.Enable("stest_left:*", `status == "x"`); !errors.Is(err, session.ErrFilter) {
		t.Errorf("a type error: %v, want ErrFilter", err)
	}
	// Comprehension variables are not fields: such a filter may be refused
	// for its cost (see TestFilterCostRefusedAtEnable), never left out for lacking
	// a field x.
	if _, err := s.Enable("stest_left:request_done", `[500, 503].exists(x, x == status)`); err != nil &&
		(errors.Is(err, marker.ErrLeftOut) || !errors.Is(err, session.ErrFilterCost)) {
		t.Errorf("a comprehension variable: %v", err)
	}
}

func TestLeftOutErrorNamesMarkerAndFields(t *testing.T) {
	s := newSession(t)
	r := mustEnable(t, s, "stest_left:*", `status >= 500 && method != ""`)
	s.Start()
	defer s.Stop()
	var lo *session.LeftOutError
	if refused := r.Refused(); len(refused) != 1 || !errors.As(refused[0], &lo) {
		t.Fatalf("Refused() = %v, want one *LeftOutError", refused)
	}
	if lo.Marker != "stest_left:request_start" || len(lo.Missing) != 1 || lo.Missing[0] != "status" {
		t.Errorf("left out %q missing %v, want stest_left:request_start missing [status]", lo.Marker, lo.Missing)
	}
}

// startRecording enables pattern in s, creates a trace of s in a new
// directory and starts s; it returns the directory and the trace.
func startRecording(t *testing.T, s *session.Session, pattern string) (string, *session.TraceWriter) {
	t.Helper()
	mustEnable(t, s, pattern, "")
	dir := filepath.Join(t.TempDir(), "trace")
	tw, err := session.CreateTrace(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return dir, tw
}

// stopRecording stops s, closes its trace tw and opens the trace in dir;
// the reader is closed when the test ends.
func stopRecording(t *testing.T, s *session.Session, tw *session.TraceWriter, dir string) *ctf.Reader {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
