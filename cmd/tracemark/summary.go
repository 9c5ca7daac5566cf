package main

import (
	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/format"
)

func summaryCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "summary TRACE_DIR [--json]",
		GroupID: "files",
		Short:   "Summarise a CTF trace: events per marker, time span, lost events",
		Long: `Summarise a CTF trace directory: the traced program, the time span,
events per marker (and how many had truncated fields), and the events and
packets lost per stream. A corrupt trace is summarised up to the damage,
then the error names the file and byte offset.`,
		Example: example(
			"tracemark summary ./trace",
			"tracemark summary ./trace --json | jq .markers"),
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			s, err := format.Summarize(argv[0])
			if err != nil && s.Events == 0 {
				return err
			}
			if asJSON {
				if jerr := writeJSON(a.stdout, s); jerr != nil {
					return jerr
				}
			} else if werr := s.WriteText(a.stdout); werr != nil {
				return werr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
