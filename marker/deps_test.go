package marker_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportsOnlyInternal checks that the fast path stays dependency-free:
// besides the standard library, marker links only this module's internal
// packages that exist for it (the runtime couplings, the probe contract,
// the identifier rule), never another package of the module or a module
// of someone else.
func TestImportsOnlyInternal(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goCmd, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := []string{
		"github.com/tracemark/tracemark/marker",
		"github.com/tracemark/tracemark/internal/ident",
		"github.com/tracemark/tracemark/internal/probeabi",
		"github.com/tracemark/tracemark/internal/rt",
	}
	for _, p := range strings.Fields(string(out)) {
		if !slices.Contains(allowed, p) {
			t.Errorf("marker depends on %s", p)
		}
	}
}
