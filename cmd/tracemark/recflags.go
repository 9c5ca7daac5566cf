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
	pids     []string // every -p, for the host-wide commands
	rules    ruleFlags
	buffer   string
	subbuf   string
	duration time.Duration
}

func (f *recFlags) add(cmd *cobra.Command) {
	pidsFlag(cmd, &f.pid, &f.pids)
	f.rules.add(cmd)
	cmd.Flags().StringVar(&f.buffer, "buffer", "", "buffer size per shard (one per CPU the process may use: GOMAXPROCS), such as 16M (default 4M)")
	cmd.Flags().StringVar(&f.subbuf, "subbuf", "", "sub-buffer (packet) size, a power of two such as 1M (default 256K, or a quarter of --buffer if smaller)")
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
	req := wire.RecordRequest{Rules: f.rules.rules, Buffer: f.buffer, SubBuffer: f.subbuf, Client: client, StatsInterval: statsEvery.String()}
	if f.duration > 0 {
		req.Duration = f.duration.String()
	}
	return req, nil
}
