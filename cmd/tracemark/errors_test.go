package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tracemark/tracemark/internal/wire"
)

// TestMalformedRequests sends bad requests to a traced process over its
// socket: each gets a JSON error with the right code, and the process
// keeps serving.
func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	sock := filepath.Join(e.socketDir(), wire.SocketName(target.pid()))
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"bad JSON", "POST", "/v1/record", `{"rules":[`, 400, wire.CodeBadRequest},
		{"not an object", "POST", "/v1/record", `[1,2]`, 400, wire.CodeBadRequest},
		{"trailing data", "POST", "/v1/record", `{"rules":[{"pattern":"test:*"}]}{}`, 400, wire.CodeBadRequest},
		{"unknown field", "POST", "/v1/record", `{"rules":[{"pattern":"test:*"}],"bogus":1}`, 400, wire.CodeUnknownField},
		{"huge body", "POST", "/v1/record", `{"rules":[{"pattern":"` + strings.Repeat("x", 1<<20) + `"}]}`, 413, wire.CodeTooLarge},
		{"no rules", "POST", "/v1/record", `{"rules":[]}`, 400, wire.CodeInvalid},
		{"bad glob", "POST", "/v1/record", `{"rules":[{"pattern":"test:["}]}`, 400, wire.CodeBadPattern},
		{"bad filter field", "POST", "/v1/record", `{"rules":[{"pattern":"test:value","filter":"nokey == 1"}]}`, 400, wire.CodeBadFilter},
		{"filter not boolean", "POST", "/v1/record", `{"rules":[{"pattern":"test:value","filter":"i + 1"}]}`, 400, wire.CodeBadFilter},
		{"filter syntax", "POST", "/v1/sessions/s/enable", `{"rules":[{"pattern":"test:value","filter":"i >"}]}`, 400, wire.CodeBadFilter},
		{"filter too expensive", "POST", "/v1/sessions/s/enable", `{"rules":[{"pattern":"test:value","filter":"` + nestedComprehensions + `"}]}`, 400, wire.CodeBadFilter},
		{"record filter too expensive", "POST", "/v1/record", `{"rules":[{"pattern":"test:value","filter":"key.matches('^a+b$')"}]}`, 400, wire.CodeBadFilter},
		{"bad mode", "POST", "/v1/sessions/s/enable", `{"rules":[{"pattern":"test:*"}],"mode":"sideways"}`, 400, wire.CodeInvalid},
		{"huge buffer", "POST", "/v1/sessions/s/enable", `{"rules":[{"pattern":"test:*"}],"buffer":"1G"}`, 400, wire.CodeInvalid},
		{"bad session name", "POST", "/v1/sessions/a%20b/enable", `{"rules":[{"pattern":"test:*"}]}`, 400, wire.CodeInvalid},
		{"unknown session", "POST", "/v1/sessions/nope/snapshot", ``, 404, wire.CodeNotFound},
		{"unknown session rule", "POST", "/v1/sessions/nope/disable", `{"patterns":["test:*"]}`, 404, wire.CodeNotFound},
		{"unknown recording", "POST", "/v1/recordings/rec-999/stop", ``, 404, wire.CodeNotFound},
		{"bad glob query", "GET", "/v1/markers?glob=%5B", ``, 400, wire.CodeBadPattern},
		{"body where none", "GET", "/v1/info", `{"x":1}`, 400, wire.CodeBadRequest},
		{"unknown endpoint", "GET", "/v2/info", ``, 404, wire.CodeUnknownEndpoint},
		{"wrong method", "DELETE", "/v1/info", ``, 405, wire.CodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, "http://x"+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var eb wire.ErrorBody
			if err := json.Unmarshal(b, &eb); err != nil || eb.Error == nil {
				t.Fatalf("%d %q is not a JSON error: %v", resp.StatusCode, b, err)
			}
			if resp.StatusCode != tt.status || eb.Error.Code != tt.code || eb.Error.Message == "" ||
				resp.Header.Get("Content-Type") != wire.ContentTypeJSON {
				t.Errorf("got %d %s %q, want %d %s", resp.StatusCode, resp.Header.Get("Content-Type"), b, tt.status, tt.code)
			}
		})
	}
	// The process still serves, and recorded nothing it was not asked to.
	r := e.cli("sessions", "-p", strconv.Itoa(target.pid()), "--json")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("after the bad requests: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !wire.ProcessAlive(target.pid()) {
		t.Error("the target died")
	}
}

// nestedComprehensions is a type-correct filter over test:value that takes
// 810,000 iterations per event: the agent refuses it.
var nestedComprehensions = func() string {
	l := "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30]"
	return l + ".all(a, " + l + ".all(b, " + l + ".all(c, " + l + ".exists(d, a + b + c + d == i))))"
}()

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"bogus"}, exitUsage, "unknown command"},
		{[]string{"list", "--bogus"}, exitUsage, "unknown flag"},
		{[]string{"list"}, exitUsage, "give -p PID"},
		{[]string{"list", "-p", pid, "a", "b"}, exitUsage, "accepts at most 1 arg"},
		{[]string{"record", "-p", pid}, exitUsage, "give -e GLOB"},
		{[]string{"record", "-p", pid, "-e", "test:*", "--mode", "sideways"}, exitUsage, "unknown mode"},
		{[]string{"record", "-p", pid, "-e", "test:["}, exitUsage, "bad pattern"},
		{[]string{"stream", "-p", pid, "-e", "test:value", "--filter", "nokey > 1"}, exitUsage, "undeclared reference to 'nokey'"},
		{[]string{"stream", "-p", pid, "-e", "test:value", "--filter", nestedComprehensions}, exitUsage, "too expensive: estimated cost up to 10921036, the limit is 20"},
		{[]string{"enable", "-p", pid, "-s", "costly", "-e", "test:value", "--filter", nestedComprehensions}, exitUsage, "too expensive"},
		{[]string{"stats", "-p", pid, "-e", "test:value", "--by", "nokey"}, exitUsage, `no marker matched by the -e globs has a field named "nokey"`},
		{[]string{"stats", "-p", pid, "-e", "test:value", "--hist", "key"}, exitUsage, `numeric field named "key"`},
		{[]string{"enable", "-p", pid, "-e", "test:*"}, exitUsage, "needs -s SESSION"},
		{[]string{"record", "-p", pid, "--filter", "i > 1", "-e", "test:*"}, exitUsage, "--filter applies to the -e GLOB before it"},
		{[]string{"record", "-p", pid, "-e", "test:*", "--filter", "i > 1", "--filter", "i < 5"}, exitUsage, "-e test:* has two filters"},
		{[]string{"record", "-p", pid, "-e", "test:*", "--filter", "nokey > 1"}, exitUsage, "undeclared reference to 'nokey'"},
		{[]string{"record", "-p", pid, "-e", "test:value", "--filter", `kye == "a"`}, exitUsage, "undeclared reference to 'kye' (did you mean 'key'?)"},
		{[]string{"record", "-p", pid, "-e", "test:value", "--filter", `string(i) == "1"`}, exitUsage, "not supported by the agent: string()"},
		{[]string{"record", "-p", pid, "-e", "nosuchmarker:*", "--filter", "i >"}, exitUsage, "Syntax error"},
		{[]string{"list", "-p", "nosuchprogram"}, exitError, `no instrumented process runs a program named "nosuchprogram"`},
		{[]string{"list", "-p", "2147483647"}, exitError, "does not exist"},
		{[]string{"snapshot", "-p", pid}, exitError, "no named session"},
	}
	for _, tt := range tests {
		r := e.cli(tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("tracemark %s: exit %d, want %d with %q:\n%s", strings.Join(tt.args, " "), r.code, tt.code, tt.msg, r.stderr)
		}
	}
}

// The demo as the README runs it, in the checkout: it builds the sample
// service (examples/demo), which is not part of tracemark, and runs it.
func TestDemo(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("SKIP: no go command to build the demo service with")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	dir := filepath.Join(e.runtime, "demo-trace")
	r := e.cliIn(filepath.Join(root, "docs"), "demo", "--duration", "1s", "--rate", "200", "-o", dir)
	if r.code != 0 {
		t.Fatalf("demo: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if want := "building it from " + root + ": go build -o "; !strings.Contains(r.stdout, want) {
		t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
	}
	for _, want := range []string{"tracemark list -p", "http:request_done", "Requests per status:", "@latency[http:request_done]", "babeltrace2 " + dir,
		"Its plugin (tracemark lsmod -p", "classifier v1.0.0", "classifier:classified"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, `The demo service is stopped; "tracemark demo --keep" leaves it running`) {
		t.Errorf("the demo does not say how to keep its service:\n%s", r.stdout)
	}
	m := regexpFind(`pid (\d+), serving http://127\.0\.0\.1:`, r.stdout)
	pid, _ := strconv.Atoi(m)
	if pid == 0 || wire.ProcessAlive(pid) {
		t.Errorf("demo service (pid %q) still running after the demo", m)
	}
	bt := babeltrace(t, dir)
	if n := countLines(bt, "http:request_done:"); n == 0 {
		t.Error("the demo trace has no http:request_done events")
	}
	// The plugin classifies every request: its events are in the trace
	// beside the service's.
	if n := countLines(bt, "classifier:classified:"); n == 0 {
		t.Errorf("the demo trace has no classifier:classified events (the plugin's):\n%s", r.stderr)
	}
}

// Outside a checkout, and without --service, the demo says how to get
// its sample service, which tracemark does not contain.
func TestDemoOutsideCheckout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.cli("demo", "--duration", "1s")
	for _, want := range []string{"the working directory is not in a checkout of github.com/tracemark/tracemark",
		"go install github.com/tracemark/tracemark/examples/demo@", `tracemark demo --service "$(go env GOPATH)/bin/demo"`} {
		if r.code != exitError || !strings.Contains(r.stderr, want) {
			t.Errorf("demo outside a checkout: exit %d, want %d with %q:\n%s%s", r.code, exitError, want, r.stdout, r.stderr)
		}
	}
	if strings.Contains(r.stdout, "pid ") {
		t.Errorf("a service started:\n%s", r.stdout)
	}
}

func regexpFind(re, s string) string {
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

// demo --keep leaves the service running, detached: the demo exits (its
// output ends, so the service holds neither stdout nor stderr), and the
// commands it suggests work on the service.
func TestDemoKeep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The service is this test binary (TestMain), named by --service.
	r := e.cli("demo", "--keep", "--service", e.exe, "--duration", "1s", "--rate", "200", "-o", filepath.Join(e.runtime, "trace"))
	m := regexpFind(`The demo service keeps running .*\(pid (\d+),`, r.stdout)
	pid, _ := strconv.Atoi(m)
	if pid > 0 {
		t.Cleanup(func() { killPID(pid, syscall.SIGKILL) })
	}
	if !strings.Contains(r.stdout, "The demo service keeps running for 1h (pid "+m+", http://") {
		t.Errorf("demo --keep does not say how long the service runs:\n%s", r.stdout)
	}
	if r.code != 0 || pid == 0 {
		t.Fatalf("demo --keep: exit %d, no kept pid:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !wire.ProcessAlive(pid) {
		t.Fatalf("the kept demo service (pid %d) is not running", pid)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		cmd, ok := strings.CutPrefix(strings.TrimSpace(line), "tracemark ")
		if !ok || !strings.Contains(line, strconv.Itoa(pid)) && cmd != "ps" {
			continue
		}
		words, _ := shellWords(cmd)
		if words[0] == "stream" || words[0] == "stats" {
			words = append(words, "--duration", "300ms")
		}
		if c := e.cli(words...); c.code != 0 {
			t.Errorf("tracemark %s, as the demo suggests: exit %d\n%s", cmd, c.code, c.stderr)
		}
	}
	ps := e.cli("ps")
	if !regexp.MustCompile(`(?m)^` + m + `\s+tracemark-demo-service\s`).MatchString(ps.stdout) {
		t.Errorf("ps does not list the kept service %d:\n%s", pid, ps.stdout)
	}
	// It stops on SIGTERM, as kill does.
	if err := killPID(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !waitExit(pid, 10*time.Second) {
		t.Errorf("the kept service did not exit on SIGTERM")
	}
}
