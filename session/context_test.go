package session_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/tracemark/tracemark/session"
)

// TestEventContextAllFields records with the four context fields of
// record --context pid,procname,cpu,tid from goroutines locked to their
// threads: every event, in our reader and in Babeltrace's, carries the
// process's pid, its program name, the number of the stream that holds
// it and the thread that fired it, in the order asked for.
func TestEventContextAllFields(t *testing.T) {
	needGettid(t)
	s := newSession(t, session.WithEventContext(session.ContextPID, session.ContextProcname, session.ContextCPU, session.ContextTID),
		session.WithSubBufSize(4<<10), session.WithBufferSize(1<<20))
	if got := fmt.Sprint(s.EventContext()); got != "[pid procname cpu tid]" {
		t.Fatalf("EventContext() = %s", got)
	}
	if !s.ThreadID() {
		t.Fatal("ThreadID() = false with tid in the context")
	}
	dir, tw := startRecording(t, s, "stest_tid:*")
	const perThread = 200
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tid := int64(gettid())
			for i := range perThread {
				tidEvent.Fire(tid, int64(g*perThread+i), strings.Repeat("y", i%40))
				tidPlain.Fire(tid)
			}
		}()
	}
	wg.Wait()
	prog := filepath.Base(os.Args[0])
	r := stopRecording(t, s, tw, dir)
	n := 0
	for ev, err := range r.Events() {
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range ev.ContextFields {
			names = append(names, f.Name)
		}
		if got := strings.Join(names, ","); got != "pid,procname,cpu,tid" {
			t.Fatalf("stream event context %s", got)
		}
		if pid := ev.Context[0].Int; pid != int64(os.Getpid()) {
			t.Fatalf("event %d: pid %d, want %d", n, pid, os.Getpid())
		}
		if p := string(ev.Context[1].Bytes); p != prog {
			t.Fatalf("event %d: procname %q, want %q", n, p, prog)
		}
		if cpu := ev.Context[2].Uint; cpu != uint64(ev.Stream) {
			t.Fatalf("event %d: cpu %d in stream %d", n, cpu, ev.Stream)
		}
		if tid := int64(ev.Context[3].Uint); tid != ev.Fields[0].Int {
			t.Fatalf("event %d (%s): tid %d, fired on thread %d", n, ev.Class.Name, tid, ev.Fields[0].Int)
		}
		n++
	}
	if want := 4 * 2 * perThread; n != want {
		t.Fatalf("read %d events, want %d", n, want)
	}

	lines, _ := babeltrace(t, dir)
	for _, l := range lines {
		// ...: { cpu_id = 0 }, { pid = 1, procname = "x", cpu = 0, tid = 2 }, { tid = 2 }
		want := fmt.Sprintf("{ pid = %d, procname = \"%s\", cpu = ", os.Getpid(), prog)
		_, rest, ok := strings.Cut(l, want)
		if !ok {
			t.Fatalf("babeltrace line without %s: %q", want, l)
		}
		cpu, rest, _ := strings.Cut(rest, ", tid = ")
		tid, rest, _ := strings.Cut(rest, " }")
		if !strings.Contains(l, "{ cpu_id = "+cpu+" }") {
			t.Fatalf("babeltrace: context cpu %s is not the packet's cpu_id: %q", cpu, l)
		}
		if !strings.HasPrefix(rest, ", { tid = "+tid) {
			t.Fatalf("babeltrace: context tid %s differs from the field: %q", tid, l)
		}
	}
	if len(lines) != n {
		t.Fatalf("babeltrace shows %d events, our reader %d", len(lines), n)
	}
}

// TestEventContextInvalid: an unknown field and one given twice make New
// fail, naming the option.
func TestEventContextInvalid(t *testing.T) {
	for _, fields := range [][]session.ContextField{{"ip"}, {session.ContextPID, session.ContextPID}} {
		_, err := session.New("ctx-invalid", session.WithEventContext(fields...))
		if err == nil || !strings.Contains(err.Error(), "WithEventContext") {
			t.Errorf("New with context %v: %v, want a WithEventContext error", fields, err)
		}
		if errors.Is(err, session.ErrNoThreadID) {
			t.Errorf("New with context %v: %v wraps ErrNoThreadID", fields, err)
		}
	}
}
