package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Each --filter belongs to the -e before it; a glob whose markers lack
// the filter's field leaves those out with a warning.
func TestFilterPerRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	dir := filepath.Join(e.runtime, "trace")
	// test:other (field n) lacks key: left out of the first rule, and
	// recorded unfiltered by the second.
	rec := e.start("cli", "record", "-p", pid, "-e", "test:*", "--filter", `key == "b"`, "-e", "test:other", "-o", dir)
	rec.stderr.waitFor(t, "Recording 2 markers of pid "+pid)
	target.do(t, "fire 9")
	target.do(t, "other 4")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	if want := `warning: -e 'test:*' --filter 'key == "b"' leaves out the markers without its fields: test:other (no key)`; !strings.Contains(rec.stderr.text(), want) {
		t.Errorf("no warning %q:\n%s", want, rec.stderr.text())
	}
	out := rec.stdout.text()
	for _, re := range []string{`(?m)^\s+test:value\s+3\s+0\s+6$`, `(?m)^\s+test:other\s+4\s+0\s+0$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("summary does not match %s:\n%s", re, out)
		}
	}

	// The same for a named session: enable warns too.
	r := e.cli("enable", "-p", pid, "-s", "errs", "-e", "test:*", "--filter", "i > 3")
	if r.code != 0 || !strings.Contains(r.stderr, "leaves out the markers without its fields: test:other (no i)") {
		t.Errorf("enable: exit %d, want 0 with a warning about test:other:\n%s", r.code, r.stderr)
	}
	// No marker has the field: refused.
	r = e.cli("enable", "-p", pid, "-s", "errs2", "-e", "test:*", "--filter", "nosuch > 3")
	if r.code != exitUsage || !strings.Contains(r.stderr, "undeclared reference to 'nosuch'") {
		t.Errorf("enable with a field no marker has: exit %d, want %d:\n%s", r.code, exitUsage, r.stderr)
	}
}

// list takes its globs as for every other command, -e repeatable, and
// the positional GLOB still works.
func TestListGlobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	for _, args := range [][]string{{"-e", "test:value", "-e", "test:other"}, {"test:value", "-e", "test:other"}, {"-e", "test:*"}} {
		r := e.cli(append([]string{"list", "-p", pid}, args...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "test:value ") || !strings.Contains(r.stdout, "test:other ") {
			t.Errorf("list %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	r := e.cli("list", "-p", pid, "-e", "test:value")
	if r.code != 0 || !strings.Contains(r.stdout, "test:value ") || strings.Contains(r.stdout, "test:other") {
		t.Errorf("list -e test:value: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.cli("list", "-p", pid, "-e", "test:value", "-e", "[")
	if r.code != exitUsage || !strings.Contains(r.stderr, "bad pattern") {
		t.Errorf("list with a bad glob: exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
}

func TestCleanReason(t *testing.T) {
	for in, want := range map[string]string{
		"policy strict refuses P\nlicence \"x\"\n": `policy strict refuses P; licence "x"`,
		"one line":          "one line",
		"a\r\n\r\nb\x1b[2J": `a; b\x1b[2J`,
	} {
		if got := cleanReason(in); got != want {
			t.Errorf("cleanReason(%q) = %q, want %q", in, got, want)
		}
	}
}

// A filter takes duration literals: lat > 3us rather than
// lat > duration("3us").
func TestFilterDurationLiteral(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	p := e.start("cli", "stream", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--filter", "lat > 3us")
	p.stderr.waitFor(t, "Streaming 1 marker of")
	target.do(t, "fire 8") // lat is 1, 2, 4, 8µs, twice
	p.stdout.waitFor(t, "i=7 ")
	p.signal(t, os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("stream exited %d:\n%s", code, p.stderr.text())
	}
	var got []string
	for _, l := range strings.Split(p.stdout.text(), "\n") {
		got = append(got, regexpFind(` i=(\d) `, l))
	}
	if strings.Join(got, ",") != "2,3,6,7" {
		t.Errorf("stream --filter 'lat > 3us' printed events %v, want 2,3,6,7:\n%s", got, p.stdout.text())
	}
}

// list --count counts the firings of each marker with a session of its
// own: not 0 for a flight recorder's markers, not mixed with another
// session's filtered events.
func TestListCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	for _, args := range [][]string{
		{"enable", "-p", pid, "-s", "blackbox", "-e", "test:*", "--mode", "overwrite"},
		{"enable", "-p", pid, "-s", "errs", "-e", "test:value", "--filter", "i > 100"},
	} {
		if r := e.cli(args...); r.code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	target.do(t, "fire 10")
	r := e.cli("list", "-p", pid, "-e", "test:*")
	if r.code != 0 || strings.Contains(r.stdout, "EVENTS") || !strings.Contains(r.stdout, "on: 2 probes (blackbox,errs)") {
		t.Errorf("list without --count: exit %d\n%s", r.code, r.stdout)
	}
	p := e.start("cli", "list", "-p", pid, "-e", "test:*", "--count", "1m")
	p.stderr.waitFor(t, "Counting 2 markers of pid "+pid)
	target.do(t, "fire 25")
	target.do(t, "other 3")
	p.signal(t, os.Interrupt) // stops the count early, cleanly
	if code := p.wait(t); code != 0 {
		t.Fatalf("list --count: exit %d\n%s", code, p.stderr.text())
	}
	out := p.stdout.text()
	for _, re := range []string{`(?m)^MARKER\s+STABILITY\s+STATE\s+FIRED IN 1m0s\s+FIELDS$`, `(?m)^test:value\s+stable\s+on: 2 probes \(blackbox,errs\)\s+25\s`, `(?m)^test:other\s+unstable\s+on: 1 probe \(blackbox\)\s+3\s`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("list --count output does not match %s:\n%s", re, out)
		}
	}
}
