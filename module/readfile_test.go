package module

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	exact := filepath.Join(dir, "exact.wasm")
	if err := os.WriteFile(exact, make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(exact, 1000); err != nil || len(b) != 1000 {
		t.Errorf("file of the limit: %d bytes, %v", len(b), err)
	}
	if _, err := ReadFile(exact, 999); !errors.Is(err, ErrTooBig) || !strings.Contains(err.Error(), "1000 bytes, limit 999") {
		t.Errorf("file over the limit: %v", err)
	}
	if _, err := ReadFile(dir, 1000); !errors.Is(err, ErrNotRegular) {
		t.Errorf("directory: %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), 1000); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// Files whose size lies: /proc files say 0 bytes. pagemap has 8 bytes per
// page of the address space: reading it whole exhausts memory.
func TestReadFileLyingSize(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	const limit = 1 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadFile("/proc/self/pagemap", limit)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooBig) || !strings.Contains(err.Error(), "1048576 bytes (its size said 0)") {
		t.Fatalf("pagemap: %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4*limit {
		t.Errorf("reading pagemap allocated %d bytes, limit %d", got, limit)
	}
	// A short /proc file is read whole.
	b, err := ReadFile("/proc/self/status", limit)
	if err != nil || !strings.Contains(string(b), "VmRSS") {
		t.Errorf("/proc/self/status: %d bytes, %v", len(b), err)
	}
}
