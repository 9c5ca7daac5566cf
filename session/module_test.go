package session_test

import (
	"path/filepath"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

var (
	inPlugin = marker.Define1("stest_mod:plugin", marker.Int("n"),
		marker.InModule(marker.Module{Path: "shop_plugin", Version: "v1.2.0"}))
	inHostile = marker.Define1("stest_mod:hostile", marker.Int("n"),
		marker.InModule(marker.Module{Path: "plug\x1b[31min", Version: "v1"}))
)

// A trace keeps each marker's module; one that is not printable text
// (marker.InModule takes any) is left out, and the trace is written.
func TestTraceKeepsModules(t *testing.T) {
	s := newSession(t)
	mustEnable(t, s, "stest_mod:*", "")
	dir := filepath.Join(t.TempDir(), "trace")
	tw, err := session.CreateTrace(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	inPlugin.Fire(1)
	inHostile.Fire(2)
	s.Stop()
	if err := tw.Close(); err != nil {
		t.Fatalf("writing the trace: %v", err)
	}
	r, err := ctf.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := map[string]string{}
	for _, ec := range r.Classes() {
		got[ec.Name] = ec.Module
	}
	if got["stest_mod:plugin"] != "shop_plugin@v1.2.0" || got["stest_mod:hostile"] != "" || len(got) != 2 {
		t.Errorf("modules %q, want shop_plugin@v1.2.0 and none", got)
	}
}
