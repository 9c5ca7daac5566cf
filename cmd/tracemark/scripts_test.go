package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// scripts/test says what it is doing, stage by stage, and ends with one
// visible line when Babeltrace 2 is missing. It runs here with a stub go
// command that prints its arguments, on a PATH of its own.
func TestScriptStages(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dirname, err := exec.LookPath("dirname")
	if err != nil {
		t.Skip("no dirname")
	}
	for _, tc := range []struct{ fail, babeltrace bool }{{false, false}, {true, false}, {false, true}} {
		fail := tc.fail
		bin := t.TempDir()
		if err := os.Symlink(dirname, filepath.Join(bin, "dirname")); err != nil {
			t.Fatal(err)
		}
		if tc.babeltrace {
			if err := os.WriteFile(filepath.Join(bin, "babeltrace2"), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		stub := "#!/bin/sh\necho \"go $*\"\n"
		if fail {
			stub += "case \"$*\" in *tracemark_gracetest*) exit 1;; esac\n"
		}
		if err := os.WriteFile(filepath.Join(bin, "go"), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bash, "../../scripts/test")
		cmd.Env = append(os.Environ(), "PATH="+bin)
		out, err := cmd.CombinedOutput()
		if fail != (err != nil) {
			t.Fatalf("scripts/test with a go that fails=%v: %v\n%s", fail, err, out)
		}
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		for _, want := range []string{"== [1/4] all packages under the race detector", "go test -race -count=1 -timeout 15m ./...", "== [2/4] ", "== [3/4] "} {
			if !strings.Contains(string(out), want) {
				t.Errorf("fail=%v: output lacks %q:\n%s", fail, want, out)
			}
		}
		last := lines[len(lines)-1]
		noted := strings.HasPrefix(lines[len(lines)-2], "NOTE: babeltrace2 is not installed")
		if noted == tc.babeltrace {
			t.Errorf("%+v: the line before the last is %q; want the babeltrace2 note only without babeltrace2:\n%s", tc, lines[len(lines)-2], out)
		}
		if want := map[bool]string{false: "== all tests passed in ", true: "== tests FAILED (exit 1) after "}[fail]; !strings.HasPrefix(last, want) {
			t.Errorf("fail=%v: last line %q, want %q...", fail, last, want)
		}
	}
}
