package build

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tracemark/tracemark/module"
)

func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Go toolchain")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.24\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n\n//go:wasmexport hook\nfunc hook(p, n uint32) uint64 { return 0 }\n"), 0o644)
	key, _ := module.GenerateKey("builder", nil)
	out := filepath.Join(t.TempDir(), "tiny.wasm")
	mi := module.Modinfo{Name: "tiny", License: "MIT"}
	opts := newJob(dir, mi, []Option{WithKey(key)})
	if err := Build(context.Background(), dir, mi, out, WithKey(key)); err != nil {
		t.Fatal(err)
	}
	fi, err := module.InspectFile(out, module.Keyring{key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if fi.Modinfo == nil || fi.Modinfo.Name != "tiny" || fi.Modinfo.ABI != module.ABIVersion || fi.Signature.State != module.Trusted || fi.ABIError != "" {
		t.Errorf("built module: %+v", fi)
	}
	hasInit := false
	for _, e := range fi.Exports {
		hasInit = hasInit || e == "_initialize"
	}
	if !hasInit {
		t.Errorf("not a reactor: exports %v", fi.Exports)
	}

	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { undefined() }\n"), 0o644)
	if err := Build(context.Background(), dir, mi, out, WithKey(key)); err == nil {
		t.Error("broken source built")
	}
	k1, _ := cacheKey(opts)
	opts.Modinfo.Version = "v2"
	k2, _ := cacheKey(opts)
	if k1 == k2 {
		t.Error("cache key ignores the metadata")
	}
}
