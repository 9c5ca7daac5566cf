package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tracemark man writes a page per visible command, from its help.
func TestManPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := filepath.Join(e.runtime, "man1")
	r := e.cli("man", "-o", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "man pages into "+dir) {
		t.Fatalf("man: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, c := range newRoot(nil, nil).Commands() {
		page := filepath.Join(dir, "tracemark-"+c.Name()+".1")
		_, err := os.Stat(page)
		if c.Hidden != os.IsNotExist(err) {
			t.Errorf("command %s (hidden %v): page %s: %v", c.Name(), c.Hidden, page, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "tracemark-stats.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`.TH "TRACEMARK-STATS" "1"`, ".SH NAME", "--lhist F:MIN:MAX:STEP", "bpftrace"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("tracemark-stats.1 lacks %q", want)
		}
	}
	if r := e.cli("man"); r.code != exitUsage {
		t.Errorf("man without -o: exit %d, want %d", r.code, exitUsage)
	}
}
