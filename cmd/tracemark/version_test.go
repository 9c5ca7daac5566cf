package main

import (
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/internal/wire"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.cli("version")
	if r.code != 0 {
		t.Fatalf("version: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"\ncommit    ", "\ngo        " + runtime.Version(), "\nprotocol  " + wire.ProtocolString(wire.Version, wire.Revision)} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("version output lacks %q:\n%s", want, r.stdout)
		}
	}
	version := regexpFind(`^tracemark (\S+)\n`, r.stdout)
	if version == "" {
		t.Fatalf("version output does not start with the version:\n%s", r.stdout)
	}
	if f := e.cli("--version"); f.code != 0 || f.stdout != r.stdout {
		t.Errorf("--version: exit %d, output %q, want that of version %q", f.code, f.stdout, r.stdout)
	}

	// ps shows the version of tracemark in each process: the target is
	// built from the same code as this CLI.
	target := e.startTarget()
	var got *wire.Info
	for _, info := range e.ps() { // processes of other test runs may show up from /tmp/tracemark-UID
		if info.PID == target.pid() {
			got = &info
		}
	}
	if got == nil || got.Tracemark != version {
		t.Fatalf("ps --json shows the target as %+v, want tracemark %q", got, version)
	}
	ps := e.cli("ps")
	row := regexp.MustCompile(`(?m)^` + strconv.Itoa(target.pid()) + `\s+tm-target\s+` + regexp.QuoteMeta(version) + `\s+\d+`)
	if !strings.Contains(ps.stdout, "VERSION") || !row.MatchString(ps.stdout) {
		t.Errorf("ps does not show the target's version %q:\n%s", version, ps.stdout)
	}
}
