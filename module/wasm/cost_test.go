//go:build linux

// The load cost is read from the child's rusage and /proc/self/status:
// Linux only.

package wasm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadCost reports the CPU time and peak resident memory (of the
// whole test process, Go runtime included) the host spends
// loading each hostile shape, each in a process of its own (run with
// TRACEMARK_LOAD_COST=1 and -v). A shape the host refuses must cost it
// at most 2 s of CPU and 256 MiB; the numbers of the loads it accepts
// (a Go module) are reported for comparison.
func TestLoadCost(t *testing.T) {
	if file := os.Getenv("TRACEMARK_LOAD_COST_FILE"); file != "" {
		loadCostChild(file)
		return
	}
	if os.Getenv("TRACEMARK_LOAD_COST") == "" {
		t.Skip("set TRACEMARK_LOAD_COST=1 to measure")
	}
	dir := t.TempDir()
	shapes := []struct {
		name string
		wasm []byte
	}{
		{"bare", bareModule("bare")},
		{"nested blocks, 300 KB", nestedBlocks("nested", 100_000, 1)},
		{"nested 2048 deep x 100", nestedBlocks("nested", 2048, 100)},
		{"15M empty functions, 60 MB", straightCode("funcs", 0, 15_000_000)},
		{"50000 locals x 100", manyLocals("locals", 50_000, 100)},
		{"straight code, 60 MB", straightCode("huge", 300_000, 67)},
		{"br_table of 100000", bigBrTable("brtable", 100_000)},
		{"table of 2^27", bigTable("table", 1<<27, 0, false)},
		{"Go module (hostile)", hostileWasm(t)},
	}
	for _, s := range shapes {
		path := filepath.Join(dir, "shape.wasm")
		if err := os.WriteFile(path, s.wasm, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoadCost$")
		cmd.Env = append(os.Environ(), "TRACEMARK_LOAD_COST_FILE="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", s.name, err, out)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		t.Logf("%-28s %9d bytes: cpu %5.2fs, peak RSS %s: %s", s.name, len(s.wasm), cpu.Seconds(), out[:bytes.IndexByte(out, '|')], out[bytes.IndexByte(out, '|')+1:])
	}
}

// loadCostChild loads the file into a host without a cache and prints
// what became of it.
func loadCostChild(file string) {
	h, err := NewHost()
	if err != nil {
		fmt.Print(err)
		os.Exit(1)
	}
	_, err = h.LoadFile(context.Background(), file, WithForce())
	// The peak resident set of this process, from its start: the
	// rusage of a child counts its parent's before exec.
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Print(strings.TrimSpace(v))
		}
	}
	fmt.Print("|")
	if err != nil {
		fmt.Print("refused: ", err)
	} else {
		fmt.Print("loaded")
	}
	os.Exit(0)
}
