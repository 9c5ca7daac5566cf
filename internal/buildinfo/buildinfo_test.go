package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	base := Info{Version: "unknown", Go: runtime.Version()}
	main := &debug.BuildInfo{
		Main:     debug.Module{Path: ModulePath, Version: "v0.4.1"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}},
	}
	if got := fromBuildInfo(main, base); got.Version != "v0.4.1" || got.Commit != "abc123" || !got.Modified {
		t.Errorf("the tracemark command: %+v", got)
	}
	dep := &debug.BuildInfo{
		Main:     debug.Module{Path: "example.com/service", Version: "v1.0.0"},
		Deps:     []*debug.Module{{Path: "example.com/other", Version: "v9"}, {Path: ModulePath, Version: "v0.3.0"}},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "not-ours"}},
	}
	if got := fromBuildInfo(dep, base); got.Version != "v0.3.0" || got.Commit != "" {
		t.Errorf("a program using tracemark: %+v", got)
	}
	repl := &debug.BuildInfo{Deps: []*debug.Module{{Path: ModulePath, Version: "v0.3.0", Replace: &debug.Module{Path: "../tracemark"}}}}
	if got := fromBuildInfo(repl, base); got.Version != "unknown" {
		t.Errorf("a replaced module without a version: %+v", got)
	}
	if got := fromBuildInfo(&debug.BuildInfo{Main: debug.Module{Path: "x"}}, base); got != base {
		t.Errorf("a program without tracemark: %+v", got)
	}
}
