package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeCommands returns the tracemark commands of the README's sh
// blocks, as argument lists (without "tracemark"), in order. Continued
// lines are joined, comments dropped, and "a && b" gives two commands.
func readmeCommands(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cmds [][]string
	inSh := false
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for line := range strings.SplitSeq(text, "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inSh = true
			continue
		case strings.HasPrefix(line, "```"):
			inSh = false
			continue
		}
		if !inSh {
			continue
		}
		words, err := shellWords(line)
		if err != nil {
			t.Fatalf("README line %q: %v", line, err)
		}
		for len(words) > 0 {
			cmd := words
			if i := indexOf(words, "&&"); i >= 0 {
				cmd, words = words[:i], words[i+1:]
			} else {
				words = nil
			}
			if len(cmd) > 1 && cmd[0] == "sudo" {
				cmd = cmd[1:] // the tests run as root, or skip what needs it
			}
			if len(cmd) > 0 && cmd[0] == "tracemark" {
				cmds = append(cmds, cmd[1:])
			}
		}
	}
	return cmds
}

func indexOf(words []string, w string) int {
	for i, x := range words {
		if x == w {
			return i
		}
	}
	return -1
}

// shellWords splits a line as sh would, for the README's subset: single
// and double quotes, "#" comments, "&&" and "|" as words.
func shellWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(line[i+1:], c)
			if j < 0 {
				return nil, strconv.ErrSyntax
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			i = len(line)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// TestReadmeCommands runs every tracemark command of the README against
// the demo service, as an operator would paste them: only the pid is
// substituted, long durations are shortened, and commands that run until
// Ctrl-C get a --duration.
func TestReadmeCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start("demoservice", "--rate=300", "--attached")
	// The README's module commands (lsmod, rmmod, ...) need the example
	// plugin loaded. The service loads it before it says it is ready, and
	// compiling it takes a minute or more under the race detector on a
	// busy machine.
	loaded := svc.stderr.waitWithin(t, 5*time.Minute, "the demo service to load its plugin", func(s string) bool {
		return strings.Contains(s, "loaded the example plugin") || strings.Contains(s, "running without the example plugin")
	})
	if !strings.Contains(loaded, "loaded the example plugin") {
		t.Fatalf("the demo service did not load the example plugin: %s", loaded)
	}
	ready := svc.stdout.waitFor(t, "ready ")
	pid := regexpFind(`pid=(\d+)`, ready)
	if pid == "" {
		t.Fatalf("demo service ready line %q", ready)
	}
	pluginCopy(t, e.runtime, "plugin.wasm") // the README's plugin.wasm, in the commands' directory
	cmds := readmeCommands(t)
	if len(cmds) < 15 {
		t.Fatalf("found only %d tracemark commands in the README: %q", len(cmds), cmds)
	}
	longDuration := regexp.MustCompile(`^\d+[sm]$`)
	for _, args := range cmds {
		if args[0] == "demo" || args[0] == "help" {
			continue // TestDemo runs the demo
		}
		if args[0] == "ui" {
			continue // serves until Ctrl-C: TestUIAPI and interop/browser run it
		}
		if indexOf(args, "--otlp") >= 0 {
			continue // needs a collector: TestRecordOTLP and interop/otelcol run these against a receiver
		}
		run := make([]string, 0, len(args)+2)
		for i := 0; i < len(args); i++ {
			a := args[i]
			switch {
			case i > 0 && args[i-1] == "-p":
				a = pid
			case i > 0 && args[i-1] == "--name":
				a = "tm-demoservice" // the demo service's program name here
			case a == "--all" && args[0] != "ps":
				// As root, --all reaches every traced process of the
				// host, among them other tests' (and other packages'
				// tests'), whose sessions it would change: take only
				// the demo service, by name, as --all would here.
				run = append(run, "--name")
				a = "tm-demoservice"
			case i > 0 && (args[i-1] == "--duration" || args[i-1] == "--count") && longDuration.MatchString(a):
				a = "1s"
			}
			run = append(run, a)
		}
		if (args[0] == "stream" || args[0] == "stats") && indexOf(args, "--duration") < 0 {
			run = append(run, "--duration", "1s")
		}
		r := e.cli(run...)
		if r.code != 0 {
			t.Errorf("tracemark %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
			continue
		}
		// The flagship command leaves out http:request_start, which has
		// no status, and says so.
		if args[0] == "record" && indexOf(args, "--filter") >= 0 {
			if !strings.Contains(r.stderr, "leaves out the markers without its fields: http:request_start (no status)") {
				t.Errorf("record with --filter did not warn about http:request_start:\n%s", r.stderr)
			}
			if !strings.Contains(r.stdout, "http:request_done") {
				t.Errorf("record with --filter recorded no http:request_done:\n%s", r.stdout)
			}
		}
	}
	for _, f := range []string{"trace/metadata", "trace.pftrace", "host.json", "incident/metadata", "vendor.key", "host-trace", "api-trace"} {
		if _, err := os.Stat(filepath.Join(e.runtime, f)); err != nil {
			t.Errorf("the README's commands did not make %s: %v", f, err)
		}
	}
}
