// Package buildinfo says which tracemark a binary was built from: the
// version of the tracemark module (the main module of the tracemark
// command, a dependency of an instrumented program), the commit when the
// build knows it, and the Go version.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// ModulePath is the tracemark module's path.
const ModulePath = "github.com/tracemark/tracemark"

// Info describes the build.
type Info struct {
	// Version is the tracemark module's version: a tag such as v0.4.1, a
	// pseudo-version, or "(devel)" for a build in a checkout without
	// version control information; "unknown" without build information.
	Version string
	// Commit is the VCS revision and Modified whether the work tree had
	// changes, when tracemark is the main module built from a checkout.
	Commit   string
	Modified bool
	// Go is the Go version the binary was built with.
	Go string
}

// Read returns the running binary's build information.
func Read() Info {
	info := Info{Version: "unknown", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	return fromBuildInfo(bi, info)
}

func fromBuildInfo(bi *debug.BuildInfo, info Info) Info {
	mod := &bi.Main
	if mod.Path != ModulePath {
		mod = nil
		for _, d := range bi.Deps {
			if d.Path == ModulePath {
				mod = d
				if d.Replace != nil {
					mod = d.Replace
				}
				break
			}
		}
	}
	if mod == nil {
		return info
	}
	if mod.Version != "" {
		info.Version = mod.Version
	}
	if mod == &bi.Main {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	return info
}
