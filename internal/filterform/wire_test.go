package filterform

import (
	"testing"

	"github.com/tracemark/tracemark/internal/wire"
)

// The protocol's bound on a rule's checked form is the form's own: a form
// the CLI may send is one the agent may decode, and no larger.
func TestMaxLenIsTheProtocols(t *testing.T) {
	if MaxLen != wire.MaxCheckedLen {
		t.Errorf("filterform.MaxLen = %d, wire.MaxCheckedLen = %d: want the same bound", MaxLen, wire.MaxCheckedLen)
	}
}
