package agent_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/agent"
)

// TestInvalidOption checks that Start refuses an option given a value out
// of its range, with an error naming the option, and starts nothing.
func TestInvalidOption(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  agent.Option
	}{
		{"WithTimeouts", agent.WithTimeouts(-time.Second, 0)},
		{"WithTimeouts", agent.WithTimeouts(0, -time.Second)},
		{"WithMaxConns", agent.WithMaxConns(-1)},
		{"WithMemoryBudget", agent.WithMemoryBudget(-1)},
	} {
		a, err := agent.Start(agent.WithDir(filepath.Join(t.TempDir(), "sockets")), tc.opt)
		if err == nil {
			a.Close()
			t.Errorf("%s: Start succeeded, want an error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: error %q does not name the option", tc.name, err)
		}
	}
}
