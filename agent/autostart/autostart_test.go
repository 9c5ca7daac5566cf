package autostart_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/agent/autostart"
)

const childEnv = "AUTOSTART_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		// Package initialisation has run with the child's environment.
		if autostart.Agent == nil {
			fmt.Println("no agent")
			os.Exit(1)
		}
		fmt.Println(autostart.Agent.Socket())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestOffByDefault(t *testing.T) {
	if os.Getenv(autostart.EnvAgent) == "1" {
		t.Skip("the test itself runs with TRACEMARK_AGENT=1")
	}
	if autostart.Agent != nil {
		t.Error("agent started without TRACEMARK_AGENT=1")
	}
}

func TestStartsFromEnvironment(t *testing.T) {
	dir, err := os.MkdirTemp("", "tmauto")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", autostart.EnvAgent+"=1", "XDG_RUNTIME_DIR="+dir, "GORACE=atexit_sleep_ms=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := filepath.Join(dir, "tracemark", strconv.Itoa(cmd.Process.Pid)+".sock")
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("agent socket %q, want %q", got, want)
	}
}
