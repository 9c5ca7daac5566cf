package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/buildinfo"
	"github.com/tracemark/tracemark/internal/wire"
)

// versionLine is the version alone: v0.4.1, (devel).
func versionLine() string { return buildinfo.Read().Version }

// versionText is what "tracemark version" and "tracemark --version" print.
func versionText() string {
	bi := buildinfo.Read()
	commit := bi.Commit
	switch {
	case commit == "":
		commit = "unknown (built without version control information)"
	case bi.Modified:
		commit += " (with uncommitted changes)"
	}
	return fmt.Sprintf("tracemark %s\ncommit    %s\ngo        %s %s/%s\nprotocol  %s\n",
		bi.Version, commit, bi.Go, runtime.GOOS, runtime.GOARCH, wire.ProtocolString(wire.Version, wire.Revision))
}

func versionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print tracemark's version, commit, Go version and protocol version",
		Long: `Print the version of this tracemark command (a release tag, a
pseudo-version, or "(devel)" for a build in a checkout), the commit it was
built from when known, the Go version and the agent protocol version it
speaks. "tracemark ps" shows the version of tracemark in each process.`,
		Args: args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			_, err := io.WriteString(a.stdout, versionText())
			return err
		},
	}
}
