//go:build unix

package module

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
)

func TestReadFileFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo.wasm")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip(err)
	}
	// No writer: opening it to read would block; ReadFile refuses it.
	if _, err := ReadFile(fifo, 1000); !errors.Is(err, ErrNotRegular) {
		t.Errorf("FIFO: %v", err)
	}
	if _, err := InspectFile(fifo, nil); !errors.Is(err, ErrNotRegular) {
		t.Errorf("InspectFile of a FIFO: %v", err)
	}
	if _, err := ReadFile("/dev/zero", 1000); !errors.Is(err, ErrNotRegular) {
		t.Errorf("/dev/zero: %v", err)
	}
}
