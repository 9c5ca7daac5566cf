package agentmodules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/module/wasm"
)

// TestStuckUnloadIsAConflict: an unload that a call holds up is the
// process's state, not the agent's fault, and the answer says what
// becomes of the module.
func TestStuckUnloadIsAConflict(t *testing.T) {
	err := fmt.Errorf("unloading x: %w: %w", wasm.ErrCallStuck, context.DeadlineExceeded)
	var we *wire.Error
	if !errors.As(moduleError(err), &we) || we.Code != wire.CodeConflict || !strings.Contains(we.Message, "unloaded when that call ends") {
		t.Fatalf("moduleError(%v) = %v, want a conflict that says the unload completes", err, moduleError(err))
	}
}
