package wasm

import (
	"os"
	"testing"

	"github.com/tracemark/tracemark/module/internal/wasmbin"
)

// dataSegments counts a module's data segments.
func dataSegments(t *testing.T, wasm []byte) int {
	t.Helper()
	secs, err := wasmbin.Sections(wasm)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secs {
		if s.ID == wasmbin.SectionData {
			n, _, err := wasmbin.ReadU32(s.Payload)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	return 0
}

// The example plugin's tens of thousands of data segments (Go's linker
// starts one at every run of 8 zero bytes) are a few dozen once the host
// instruments it: wasmbin.MergeData finds Go's layout mergeable. (That
// the plugin starts and runs with them is every plugin test's business.)
func TestPluginDataMerged(t *testing.T) {
	raw, err := os.ReadFile(pluginPath(t))
	if err != nil {
		t.Fatal(err)
	}
	code, err := instrument(raw)
	if err != nil {
		t.Fatal(err)
	}
	before, after := dataSegments(t, raw), dataSegments(t, code)
	if before < 1000 || after > 100 {
		t.Fatalf("%d data segments, %d after instrumenting", before, after)
	}
}
