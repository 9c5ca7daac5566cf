// Package pluginbuild builds the example plugin (package
// github.com/tracemark/tracemark/examples/plugin) into a module file, for
// tests, benchmarks and the demo service:
//
//	path, err := pluginbuild.Path(ctx)
//	m, err := wasm.LoadFile(ctx, path)
//
// It needs the source tree and a Go toolchain; the result is cached (see
// guest/build.Cached).
package pluginbuild

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/tracemark/tracemark/guest/build"
	"github.com/tracemark/tracemark/module"
)

// Modinfo is the example plugin's metadata.
var Modinfo = module.Modinfo{
	Name:        "classifier",
	Version:     "v1.0.0",
	Description: "classifies the demo service's requests (example binary-only plugin)",
	Author:      "Example Plugins Ltd <plugins@example.com>",
	License:     "Proprietary",
	ABI:         module.ABIVersion,
}

// Dir returns the plugin's source directory.
func Dir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return "", fmt.Errorf("pluginbuild: source directory unknown (built with -trimpath?)")
	}
	return filepath.Dir(filepath.Dir(file)), nil
}

// Path builds the plugin if needed and returns the path of the module
// file, unsigned.
func Path(ctx context.Context) (string, error) {
	return Signed(ctx, nil)
}

// Signed is Path with the module signed by key.
func Signed(ctx context.Context, key *module.PrivateKey) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return build.Cached(ctx, dir, Modinfo, build.WithKey(key))
}

// Build builds the plugin into out.
func Build(ctx context.Context, out string) error {
	dir, err := Dir()
	if err != nil {
		return err
	}
	return build.Build(ctx, dir, Modinfo, out)
}
