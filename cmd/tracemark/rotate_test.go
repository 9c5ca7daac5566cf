package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/wire"
)

// A rotation that cannot create the next chunk leaves the recording in
// the current one, says so, and tries again after another size; the one
// that can closes the old chunk behind the capture, and keep removes it
// once closed.
func TestRotationFailureGoesOn(t *testing.T) {
	base := t.TempDir()
	h := wire.Hello{PID: 77, Program: "app"}
	clk := ctf.Clock{Name: "monotonic", Frequency: 1e9}
	var logged []error
	rot := &rotator{dir: base, hello: h, clk: clk, size: 100, keep: 1, ectx: newEventContext(nil, h),
		logErr: func(err error) { logged = append(logged, err) }}
	tr, err := rot.open(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{trace: tr}
	first := rot.chunks[0]

	rot.dir = filepath.Join(base, "file") // chunks cannot be made under a file
	if err := os.WriteFile(rot.dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.bytes = 100
	rot.check(c)
	if c.trace != tr || len(rot.closing) != 0 || len(rot.chunks) != 1 {
		t.Fatalf("after a failed rotation: trace replaced %v, %d closing, chunks %v; want the current chunk going on", c.trace != tr, len(rot.closing), rot.chunks)
	}
	if len(logged) != 1 || !strings.Contains(logged[0].Error(), "cannot start a new chunk, going on in "+first) {
		t.Fatalf("logged %v", logged)
	}
	if err := tr.q.packet(0, ctf.PacketInfo{}, nil); errors.Is(err, ctf.ErrClosed) {
		t.Fatal("the current chunk was closed by the failed rotation")
	}
	rot.check(c) // not yet another 100 bytes: no new try
	if len(logged) != 1 {
		t.Errorf("tried again at once: %v", logged)
	}

	rot.dir = base
	c.bytes = 200
	rot.check(c)
	if c.trace == tr || len(rot.chunks) != 1 || rot.chunks[0] == first {
		t.Fatalf("the rotation did not happen: chunks %v", rot.chunks)
	}
	if rot.n != 1 || rot.opens != 2 {
		t.Errorf("chunk number %d, %d opened; want 1 and 2", rot.n, rot.opens)
	}
	rot.reap(true)
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the chunk keep dropped is still there once closed: %v", err)
	}
	if err := c.trace.close(); err != nil {
		t.Fatal(err)
	}
	if len(logged) != 1 {
		t.Errorf("logged %v", logged[1:])
	}
}
