package request

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/tracemark/tracemark/internal/wire"
)

// checkChecked checks what the protocol knows of a rule's checked
// filter: its size, and that it comes with the source it was compiled
// from (which the agent reports back in RuleInfo.Filter). The session
// validates the form itself.
func checkChecked(r wire.Rule) error {
	if len(r.Checked) > wire.MaxCheckedLen {
		return wire.Errorf(wire.CodeBadFilter, "checked filter of %d bytes exceeds %d", len(r.Checked), wire.MaxCheckedLen)
	}
	if !isNull(r.Checked) && strings.TrimSpace(r.Filter) == "" {
		return wire.Errorf(wire.CodeBadFilter, "a checked filter without its source (filter)")
	}
	return nil
}

// isNull reports whether a raw JSON value is absent or null.
func isNull(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}
