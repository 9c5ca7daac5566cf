package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/wire"
)

// recFlags are the flags of every command that records: record, stream,
// stats.
type recFlags struct {
	pid      string
	rules    ruleFlags
	buffer   string
	duration time.Duration
}

func (f *recFlags) add(cmd *cobra.Command) {
	pidFlag(cmd, &f.pid)
	f.rules.add(cmd)
	cmd.Flags().StringVar(&f.buffer, "buffer", "", "buffer size per CPU in the process, such as 4M (default 1M)")
	cmd.Flags().DurationVar(&f.duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
}

// request builds the record request, checking what the CLI can check.
func (f *recFlags) request(client string, statsEvery time.Duration) (wire.RecordRequest, error) {
	if len(f.rules.rules) == 0 {
		return wire.RecordRequest{}, usagef("which markers? give -e GLOB (tracemark list shows them)")
	}
	if f.duration < 0 || f.duration > wire.MaxDuration {
		return wire.RecordRequest{}, usagef("--duration %v: want 0 (until Ctrl-C) up to %v", f.duration, wire.MaxDuration)
	}
	if statsEvery < wire.MinInterval || statsEvery > wire.MaxInterval {
		return wire.RecordRequest{}, usagef("--interval %v: want %v to %v", statsEvery, wire.MinInterval, wire.MaxInterval)
	}
	req := wire.RecordRequest{Rules: f.rules.rules, Buffer: f.buffer, Client: client, StatsInterval: statsEvery.String()}
	if f.duration > 0 {
		req.Duration = f.duration.String()
	}
	return req, nil
}
