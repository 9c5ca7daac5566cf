package marker

import (
	"runtime/debug"
	"testing"
)

// A marker's module is the longest module path holding its package; a
// marker of a command's package main is in the main module.
func TestModuleFor(t *testing.T) {
	bi := &debug.BuildInfo{
		Path: "example.com/shop/cmd/shop",
		Main: debug.Module{Path: "example.com/shop", Version: "v1.2.3"},
		Deps: []*debug.Module{
			{Path: "example.com/lib", Version: "v0.4.0"},
			{Path: "example.com/lib/sub", Version: "v0.1.0"},
			{Path: "example.com/old", Version: "v1.0.0", Replace: &debug.Module{Path: "../old", Version: ""}},
		},
	}
	for _, c := range []struct {
		pkg  string
		want Module
	}{
		{"main", Module{Path: "example.com/shop", Version: "v1.2.3"}},
		{"example.com/shop/internal/db", Module{Path: "example.com/shop", Version: "v1.2.3"}},
		{"example.com/lib/x", Module{Path: "example.com/lib", Version: "v0.4.0"}},
		{"example.com/lib/sub/y", Module{Path: "example.com/lib/sub", Version: "v0.1.0"}},
		{"example.com/old", Module{Path: "example.com/old"}},
		{"example.com/libx", Module{Path: "example.com/libx"}},
	} {
		if got := moduleFor(c.pkg, bi); got != c.want {
			t.Errorf("moduleFor(%q) = %+v, want %+v", c.pkg, got, c.want)
		}
	}
	if got := moduleFor("main", nil); got != (Module{Path: "main"}) {
		t.Errorf("without build info: %+v", got)
	}
}
