package footprint

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// depRule says that a package must not link any package whose import
// path starts with one of forbidden.
type depRule struct {
	pkg       string
	forbidden []string
	why       string
}

const mod = "github.com/tracemark/tracemark/"

var depRules = []depRule{
	{pkg: mod + "agent/autostart", forbidden: []string{"github.com/tetratelabs/wazero"},
		why: "only programs that load modules link the sandbox: module/wasm, or the agent's option agent/agentmodules"},
	{pkg: mod + "agent", forbidden: []string{"github.com/tetratelabs/wazero", mod + "module/wasm"},
		why: "the agent knows module hosts only through agent.ModuleHost"},
	{pkg: mod + "agent/autostart", forbidden: []string{"cel.dev/", "github.com/antlr4-go/", "google.golang.org/protobuf/",
		"google.golang.org/genproto/", "gopkg.in/yaml", mod + "internal/celfilter", mod + "session/celfilter"},
		why: "the traced program need not link CEL: the CLI compiles filters and the agent evaluates their checked form (session/celfilter opts in)"},
	{pkg: mod + "agent/autostart", forbidden: []string{mod + "export/", "github.com/klauspost/compress"},
		why: "only programs that export in-process (export/otlp/otlpenv) link the exporter and its gzip"},
	{pkg: mod + "cmd/tracemark", forbidden: []string{mod + "examples/", mod + "guest/build"},
		why: "the shipped CLI links no example and no module builder; tracemark demo builds its service from the checkout"},
}

// TestDependencyRules checks what the packages that programs and users
// link pull in, with go list: a violation names the chain of imports
// that brings the forbidden package in.
func TestDependencyRules(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("SKIP: no go command to list dependencies with")
	}
	for _, r := range depRules {
		t.Run(strings.TrimPrefix(r.pkg, mod)+" without "+strings.Join(r.forbidden, ","), func(t *testing.T) {
			imports := importGraph(t, goCmd, r.pkg)
			var bad []string
			for p := range imports {
				for _, f := range r.forbidden {
					if strings.HasPrefix(p, f) {
						bad = append(bad, p)
					}
				}
			}
			slices.Sort(bad)
			if len(bad) == 0 {
				return
			}
			chain := strings.Join(importChain(imports, r.pkg, bad[0]), " -> ")
			t.Errorf("%s links %d forbidden packages (%s), first %s through %s; %s",
				r.pkg, len(bad), strings.Join(r.forbidden, ", "), bad[0], chain, r.why)
		})
	}
}

// importGraph returns the packages that pkg links, each with its
// imports, as go list -deps sees them for this platform.
func importGraph(t *testing.T, goCmd, pkg string) map[string][]string {
	t.Helper()
	out, err := exec.Command(goCmd, "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, pkg).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	g := map[string][]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		g[f[0]] = f[1:]
	}
	if _, ok := g[pkg]; !ok {
		t.Fatalf("go list -deps %s does not list the package itself:\n%s", pkg, out)
	}
	return g
}

// importChain returns a shortest chain of imports from pkg to dep.
func importChain(g map[string][]string, pkg, dep string) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == dep {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append(chain, strings.TrimPrefix(p, mod))
			}
			slices.Reverse(chain)
			return chain
		}
		for _, q := range g[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{pkg, "?", dep}
}
