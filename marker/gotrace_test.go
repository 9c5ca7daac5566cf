package marker_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/trace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/marker"
)

var (
	goTraceOn = marker.Define6("gotracetest:on",
		marker.String("s"), marker.Int("n"), marker.Duration("d"), marker.Bool("ok"), marker.Bytes("raw"), marker.Float64("f"))
	goTraceOff = marker.Define1("gotracetest:off", marker.Int("n"))
)

// goTraceParsed runs `go tool trace -d=parsed` on a trace and returns its
// output, or skips without the go command.
func goTraceParsed(t *testing.T, data []byte) string {
	t.Helper()
	goCmd, err := exec.LookPath("go") // go test puts its GOROOT/bin first in PATH
	if err != nil {
		t.Skip("SKIP: no go command to run go tool trace")
	}
	file := filepath.Join(t.TempDir(), "go.trace")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goCmd, "tool", "trace", "-d=parsed", file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool trace: %v\n%s", err, out)
	}
	return string(out)
}

// TestGoTraceLog checks that, while Go's execution tracer runs, each event
// of an enabled marker is a log event of the goroutine that fired it,
// with the marker's name as category and its rendered fields as message,
// and that disabled markers write nothing.
func TestGoTraceLog(t *testing.T) {
	p, err := marker.Register("gotracetest:on", func(*marker.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	goTraceOn.Fire("before", 0, 0, false, nil, 0) // tracer off: not in the trace
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Skipf("SKIP: Go's tracer is already running: %v", err)
	}
	goTraceOn.Fire("GET /x", -3, 1500*time.Microsecond, true, []byte{0, 0xff}, 0.25)
	goTraceOff.Fire(42)
	goTraceOn.Fire("", 7, -time.Second, false, nil, 1e300)
	trace.Stop()
	goTraceOn.Fire("after", 0, 0, false, nil, 0)

	out := goTraceParsed(t, buf.Bytes())
	var logs []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "Category="); i >= 0 && strings.Contains(l, " Log ") {
			logs = append(logs, l[i:])
		}
	}
	want := []string{
		`Category="gotracetest:on" Message="s=GET /x n=-3 d=1.5ms ok=true raw=00ff f=0.25"`,
		`Category="gotracetest:on" Message="s= n=7 d=-1s ok=false raw= f=1e+300"`,
	}
	if strings.Join(logs, "\n") != strings.Join(want, "\n") {
		t.Errorf("log events:\n%s\nwant:\n%s", strings.Join(logs, "\n"), strings.Join(want, "\n"))
	}
}

// TestGoTraceLogGoroutine checks that a marker's log event is on the
// goroutine that fired it: next to a log of the test's own, written by
// the same goroutine, in go tool trace's view.
func TestGoTraceLogGoroutine(t *testing.T) {
	p, err := marker.Register("gotracetest:on", func(*marker.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unregister()
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Skipf("SKIP: Go's tracer is already running: %v", err)
	}
	done := make(chan struct{})
	for i := range 3 {
		go func() {
			defer func() { done <- struct{}{} }()
			trace.Log(context.Background(), "gotracetest:sentinel", strconv.Itoa(i))
			goTraceOn.Fire(strconv.Itoa(i), 0, 0, false, nil, 0)
		}()
	}
	for range 3 {
		<-done
	}
	trace.Stop()
	goroutine := map[string]string{} // category and message → G=
	for _, l := range strings.Split(goTraceParsed(t, buf.Bytes()), "\n") {
		i, j := strings.Index(l, " G="), strings.Index(l, " Log ")
		k := strings.Index(l, "Category=")
		if i < 0 || j < 0 || k < 0 {
			continue
		}
		g := strings.Fields(l[i:])[0]
		goroutine[l[k:]] = g
	}
	for i := range 3 {
		s := goroutine[fmt.Sprintf(`Category="gotracetest:sentinel" Message="%d"`, i)]
		m := goroutine[fmt.Sprintf(`Category="gotracetest:on" Message="s=%d n=0 d=0s ok=false raw= f=0"`, i)]
		if s == "" || m != s {
			t.Errorf("goroutine %d: sentinel on %q, marker event on %q", i, s, m)
		}
	}
}
