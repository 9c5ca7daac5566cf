package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tracemark/tracemark/agent"
	"github.com/tracemark/tracemark/examples/demoservice"
	"github.com/tracemark/tracemark/internal/cachedir"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/marker"
)

// The end-to-end tests run real processes: this test binary re-executed
// as a traced target (role "target"), as the demo's sample service (role
// "demoservice", or the program name "tracemark demo" gives it) and as
// the tracemark command (role "cli"), talking over the real socket. Each test has its own runtime
// directory, so that tests do not see each other's processes.
const roleEnv = "TRACEMARK_TEST_ROLE"

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == demoServiceProgram {
		// "tracemark demo --service" with this binary, from a "cli".
		os.Exit(demoservice.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	switch os.Getenv(roleEnv) {
	case "cli":
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	case "target":
		os.Exit(targetMain())
	case "modtarget":
		os.Exit(modTargetMain())
	case "demoservice":
		os.Exit(demoservice.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(runTests(m))
}

// The target's markers. Their values are a function of i, so that tests
// can compute exactly what they must see.
var (
	testValue = marker.Define3("test:value", marker.Int("i"), marker.String("key"), marker.Duration("lat"),
		marker.Stable, marker.Doc("fired by the test target on request"))
	testOther = marker.Define1("test:other", marker.Uint32("n"))
)

// lateSpan defines, the first time the target is told "late N" (after a
// recording started), the two ends of a span paired by "id", in a
// module of their own.
var lateSpan = sync.OnceValues(func() (marker.Marker1[int], marker.Marker2[int, string]) {
	mod := marker.InModule(marker.Module{Path: "example.com/late", Version: "v1.0.0"})
	return marker.Define1("test:late_start", marker.Int("id"), mod),
		marker.Define2("test:late_done", marker.Int("id"), marker.String("what"), mod, marker.SpanEnd("test:late_start", "id"))
})

var keys = []string{"a", "b", "c"}

// valueOf returns the fields of the i-th test:value event.
func valueOf(i int) (key string, lat time.Duration) {
	return keys[i%3], time.Duration(1<<(i%4)) * time.Microsecond
}

// targetMain is the traced process: it starts the agent, says "ready",
// and fires markers when told to on stdin ("fire N", "cut N", "other N",
// "late N", "threads G N"). It exits
// when stdin closes, so that a failed test leaves no process behind.
func targetMain() int {
	a, err := agent.Start()
	if err != nil {
		fmt.Println("agent:", err)
		return 1
	}
	defer a.Close()
	fmt.Printf("ready %d\n", os.Getpid())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var n int
		switch cmd := sc.Text(); {
		case strings.HasPrefix(cmd, "fire "):
			n, _ = strconv.Atoi(strings.TrimPrefix(cmd, "fire "))
			for i := range n {
				key, lat := valueOf(i)
				testValue.Fire(i, key, lat)
			}
		case strings.HasPrefix(cmd, "cut "):
			// test:value events whose key the recorder cuts at its NUL.
			n, _ = strconv.Atoi(strings.TrimPrefix(cmd, "cut "))
			for i := range n {
				testValue.Fire(i, "cut\x00here", time.Microsecond)
			}
		case strings.HasPrefix(cmd, "threads "):
			// "threads G N": G goroutines, each locked to a thread of its
			// own and exiting locked (which ends the thread), fire N
			// test:value events each, i being the thread's id (gettid).
			// "threads G N keep": the threads live on, parked.
			var g int
			var keep string
			fmt.Sscanf(strings.TrimPrefix(cmd, "threads "), "%d %d %s", &g, &n, &keep)
			fireOnThreads(g, n, keep == "keep")
		case strings.HasPrefix(cmd, "late "):
			// "late N": N spans of markers defined by the first "late".
			n, _ = strconv.Atoi(strings.TrimPrefix(cmd, "late "))
			start, done := lateSpan()
			for i := range n {
				start.Fire(i)
				done.Fire(i, "late")
			}
		case strings.HasPrefix(cmd, "other "):
			n, _ = strconv.Atoi(strings.TrimPrefix(cmd, "other "))
			for i := range n {
				testOther.Fire(uint32(i))
			}
		}
		fmt.Printf("done %s\n", sc.Text())
	}
	return 0
}

// fireOnThreads runs the target's "threads G N [keep]".
func fireOnThreads(g, n int, keep bool) {
	var locked, done sync.WaitGroup
	locked.Add(g)
	done.Add(g)
	for range g {
		go func() {
			if !keep {
				defer done.Done()
			}
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			tid := gettid()
			locked.Done()
			locked.Wait() // every goroutine holds its own thread
			for i := range n {
				testValue.Fire(tid, "thread", time.Duration(i))
			}
			if keep {
				done.Done()
				select {} // the thread stays, for the life of the process
			}
		}()
	}
	done.Wait()
}

// env is one test's world: a runtime directory and the environment of
// the processes it starts.
type env struct {
	t       *testing.T
	runtime string // $XDG_RUNTIME_DIR
	environ []string
	exe     string // the binary to run: this test binary, or a copy
	argv0   string // if set, the program name of targets instead of tm-target
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "tme") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, wire.EnvRuntimeDir+"=") && !strings.HasPrefix(kv, client.EnvSocket+"=") &&
			!strings.HasPrefix(kv, roleEnv+"=") && !strings.HasPrefix(kv, "GORACE=") {
			environ = append(environ, kv)
		}
	}
	environ = append(environ, wire.EnvRuntimeDir+"="+dir,
		// Race-enabled binaries sleep 1s at exit by default: not ours.
		"GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	return &env{t: t, runtime: dir, environ: environ, exe: os.Args[0]}
}

// socketDir is where the env's agents put their sockets.
func (e *env) socketDir() string { return filepath.Join(e.runtime, "tracemark") }

// lines collects the lines of a reader and lets tests wait for one.
type lines struct {
	mu    sync.Mutex
	all   []string
	more  chan struct{} // closed and replaced at every new line or EOF
	eof   bool
	eofCh chan struct{} // closed at EOF
}

func readLines(r io.Reader) *lines {
	l := &lines{more: make(chan struct{}), eofCh: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l.add(sc.Text(), false)
		}
		l.add("", true)
	}()
	return l
}

func (l *lines) add(s string, eof bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if eof {
		l.eof = true
		close(l.eofCh)
	} else {
		l.all = append(l.all, s)
	}
	close(l.more)
	l.more = make(chan struct{})
}

// wait returns the first line for which ok holds, failing the test after
// a deadline or at EOF.
func (l *lines) wait(t *testing.T, what string, ok func(string) bool) string {
	t.Helper()
	return l.waitWithin(t, 30*time.Second, what, ok)
}

// waitWithin is wait with another deadline.
func (l *lines) waitWithin(t *testing.T, d time.Duration, what string, ok func(string) bool) string {
	t.Helper()
	timeout := time.After(d)
	for seen := 0; ; {
		l.mu.Lock()
		for ; seen < len(l.all); seen++ {
			if ok(l.all[seen]) {
				s := l.all[seen]
				l.mu.Unlock()
				return s
			}
		}
		eof, more := l.eof, l.more
		l.mu.Unlock()
		if eof {
			t.Fatalf("waiting for %s: output ended:\n%s", what, l.text())
		}
		select {
		case <-more:
		case <-timeout:
			t.Fatalf("timed out waiting for %s; output so far:\n%s", what, l.text())
		}
	}
}

func (l *lines) waitFor(t *testing.T, substr string) string {
	t.Helper()
	return l.wait(t, strconv.Quote(substr), func(s string) bool { return strings.Contains(s, substr) })
}

// snapshot returns the lines so far.
func (l *lines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

func (l *lines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// proc is a process started by a test.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *lines
	stderr *lines
	done   chan struct{}
	code   int
}

// start runs this binary in a role. The process is killed at the end of
// the test if it still runs.
func (e *env) start(role string, args ...string) *proc {
	e.t.Helper()
	return e.startWith(role, nil, args...)
}

func (e *env) startWith(role string, attr *syscall.SysProcAttr, args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(e.exe, args...)
	cmd.Args[0] = "tm-" + role // the program name ps and list show
	if e.argv0 != "" && role == "target" {
		cmd.Args[0] = e.argv0
	}
	cmd.Env = append(e.environ, roleEnv+"="+role)
	cmd.SysProcAttr = attr
	return e.startCmd(cmd)
}

// startCmd starts a prepared command with the test's pipes and cleanup.
func (e *env) startCmd(cmd *exec.Cmd) *proc {
	e.t.Helper()
	if cmd.Dir == "" {
		cmd.Dir = e.runtime
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdin: stdin, stdout: readLines(stdout), stderr: readLines(stderr), done: make(chan struct{})}
	go func() {
		// Wait closes the pipes: read them to the end first.
		<-p.stdout.eofCh
		<-p.stderr.eofCh
		err := cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		if err != nil && p.code < 0 {
			p.code = -1
		}
		close(p.done)
	}()
	e.t.Cleanup(func() {
		stdin.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exitTimeout bounds the wait for a process to exit: a CLI command may
// load a module (insmod), which compiles it, a second or two, tens of
// seconds under the race detector on a busy machine.
const exitTimeout = 60 * time.Second * raceSlowdown

// demoStartWait bounds the wait for the demo service's ready line, which
// comes after it has built and loaded its plugin: as demoStartTimeout.
const demoStartWait = demoStartTimeout

// startDemoService starts the demo service with args and waits until it
// is ready; it returns the service and its pid.
func (e *env) startDemoService(args ...string) (*proc, string) {
	e.t.Helper()
	svc := e.start("demoservice", args...)
	ready := svc.stdout.waitWithin(e.t, demoStartWait, "the demo service to be ready", func(s string) bool {
		return strings.Contains(s, "ready pid=")
	})
	return svc, strings.TrimPrefix(strings.Fields(ready)[1], "pid=")
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(exitTimeout):
		t.Fatalf("process %v did not exit in %v; stderr:\n%s", p.cmd.Args, exitTimeout, p.stderr.text())
	}
	return -1
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// startTarget starts a traced process and waits until its agent listens.
func (e *env) startTarget() *proc {
	e.t.Helper()
	p := e.start("target")
	p.stdout.waitFor(e.t, "ready ")
	return p
}

// do sends a command to a target and waits until it is done.
func (p *proc) do(t *testing.T, cmd string) {
	t.Helper()
	// The answer to this command is the first "done CMD" line after
	// those of the same command sent before: without counting them, a
	// repeated command returned at once, before the target had done it.
	want := "done " + cmd
	before := 0
	for _, l := range p.stdout.snapshot() {
		if l == want {
			before++
		}
	}
	if _, err := fmt.Fprintln(p.stdin, cmd); err != nil {
		t.Fatal(err)
	}
	seen := 0
	// A command may fire hundreds of thousands of events: give it as
	// long as a process's exit (the race detector, a busy machine).
	p.stdout.waitWithin(t, exitTimeout, strconv.Quote(want), func(l string) bool {
		if l == want {
			seen++
		}
		return seen > before
	})
}

// result is the outcome of a CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs tracemark to completion.
func (e *env) cli(args ...string) result {
	e.t.Helper()
	p := e.start("cli", args...)
	p.stdin.Close()
	code := p.wait(e.t) // after EOF on both outputs: nothing is missed
	return p.result(code)
}

// cliIn runs the tracemark command in the working directory dir.
func (e *env) cliIn(dir string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(e.exe, args...)
	cmd.Args[0] = "tm-cli"
	cmd.Env = append(e.environ, roleEnv+"=cli")
	cmd.Dir = dir
	p := e.startCmd(cmd)
	p.stdin.Close()
	return p.result(p.wait(e.t))
}

func (p *proc) result(code int) result {
	return result{stdout: p.stdout.text(), stderr: p.stderr.text(), code: code}
}

// babeltrace reads a trace with the real Babeltrace 2 and returns its
// lines, one per event.
func babeltrace(t *testing.T, dir string) []string {
	t.Helper()
	bt, err := exec.LookPath("babeltrace2")
	if err != nil {
		t.Skip("babeltrace2 is not installed (Debian package babeltrace2): cannot check the trace with the reference reader")
	}
	out, err := exec.Command(bt, dir).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("babeltrace2 %s: %v\n%s", dir, err, stderr)
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
}

// countLines counts the lines containing substr.
func countLines(ls []string, substr string) int {
	n := 0
	for _, l := range ls {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// leaveSocket creates a socket file that nobody listens on, as a killed
// process leaves behind.
func leaveSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
}

// runTests runs the tests with the caches in a temporary directory (the
// processes they start inherit it), never in the user's.
func runTests(m *testing.M) int {
	cleanup, err := cachedir.ForTests()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	return m.Run()
}
