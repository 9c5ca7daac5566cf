package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func manCmd(a *app) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "man -o DIR",
		Short: "Write man pages for tracemark and each command",
		Long: `Write a man page (section 1) for tracemark and for each of its commands
into DIR, generated from the commands' help: tracemark.1,
tracemark-record.1, ... Install them where man looks, such as

  tracemark man -o ~/.local/share/man/man1

then "man tracemark-record". On systems whose man does not search
~/.local/share/man, add it to MANPATH.`,
		Example: example(
			"tracemark man -o ~/.local/share/man/man1 && man tracemark-stats",
			"sudo tracemark man -o /usr/local/share/man/man1"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usagef("where? give -o DIR, such as ~/.local/share/man/man1")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // reproducible pages: no generation date
			hdr := &doc.GenManHeader{Section: "1", Source: "tracemark " + versionLine(), Manual: "tracemark manual"}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return fmt.Errorf("writing man pages: %w", err)
			}
			n, _ := filepath.Glob(filepath.Join(dir, "tracemark*.1"))
			fmt.Fprintf(a.stdout, "Wrote %s into %s\n", count(len(n), "man page"), dir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "output", "o", "", "directory to write the pages into (created if needed)")
	return cmd
}
