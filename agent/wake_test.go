package agent_test

import (
	"testing"
	"time"

	"github.com/tracemark/tracemark/internal/wire"
)

// TestRecordDrainsWhenABufferFills records with flush and stats intervals
// of an hour: packets can only arrive because the recording goroutine
// that filled a sub-buffer woke the agent's reader. (The first packet
// frame arrives while the recording is still running.)
func TestRecordDrainsWhenABufferFills(t *testing.T) {
	_, c := startAgent(t)
	s, err := c.Record(ctx(t), wire.RecordRequest{
		Rules:  []wire.Rule{{Pattern: "agenttest:tick"}},
		Buffer: "64K", FlushInterval: "1h", StatsInterval: "1h",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// 64 KiB per CPU is split into 16 KiB packets; a tick record is about
	// 22 bytes, so this fills a few sub-buffers of one shard, and not all
	// of the buffer.
	fireTicks(2000)
	got := make(chan wire.FrameType, 1)
	go func() {
		for {
			f, err := s.Next()
			if err != nil {
				close(got)
				return
			}
			if f.Type == wire.FramePacket {
				got <- f.Type
				return
			}
		}
	}()
	select {
	case _, ok := <-got:
		if !ok {
			t.Fatal("stream ended before any packet")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no packet within 10s although sub-buffers filled: the reader was not woken")
	}
}
