package wire

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/tracemark/tracemark"

// leaves are the packages of this module that the protocol may use: they
// import nothing of the module but other leaves (checked below), so that
// a client of the protocol links neither the recorder nor CEL nor wazero.
// internal/evctx, the context fields' names and CTF types, uses ctf;
// ctf uses internal/cstring, which imports nothing.
var leaves = []string{modulePath + "/ctf", modulePath + "/internal/ident", modulePath + "/internal/evctx", modulePath + "/internal/cstring"}

// TestImportsOnlyLeaves fails if package wire (its non-test files)
// imports a package of this module other than the leaves, or if a leaf
// stops being one: the protocol is shared by the agent and its clients,
// and request validation, which needs the recorder's packages, lives
// beside the agent.
func TestImportsOnlyLeaves(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ours := func(dir string) []string {
		t.Helper()
		p, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		var out []string
		for _, imp := range p.Imports {
			if imp == modulePath || strings.HasPrefix(imp, modulePath+"/") {
				out = append(out, imp)
			}
		}
		return out
	}
	for _, imp := range ours(".") {
		if !slices.Contains(leaves, imp) {
			t.Errorf("package wire imports %s: only %v may be imported", imp, leaves)
		}
	}
	for _, leaf := range leaves {
		dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(leaf, modulePath+"/")))
		for _, imp := range ours(dir) {
			if !slices.Contains(leaves, imp) {
				t.Errorf("%s is no longer a leaf: it imports %s", leaf, imp)
			}
		}
	}
}
