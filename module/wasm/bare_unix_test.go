//go:build unix

package wasm

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tracemark/tracemark/module"
)

// A FIFO without a writer is refused at once, not waited on.
func TestLoadFileFIFO(t *testing.T) {
	h := newHost(t)
	fifo := filepath.Join(t.TempDir(), "fifo.wasm")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip(err)
	}
	if _, err := h.LoadFile(context.Background(), fifo); !errors.Is(err, module.ErrNotRegular) {
		t.Errorf("FIFO: %v, want ErrNotRegular", err)
	}
}
