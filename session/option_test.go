package session_test

import (
	"strings"
	"testing"

	"github.com/tracemark/tracemark/session"
)

// TestInvalidOption checks that New refuses an option given a value out
// of its range with an error naming the option, and that the defaults are
// what New without options resolves.
func TestInvalidOption(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  session.Option
	}{
		{"WithMode", session.WithMode(7)},
		{"WithBufferSize", session.WithBufferSize(-1)},
		{"WithSubBufSize", session.WithSubBufSize(-4096)},
		{"WithMaxStringLen", session.WithMaxStringLen(-1)},
	} {
		s, err := session.New("invalid", tc.opt)
		if err == nil {
			s.Destroy()
			t.Errorf("%s: New succeeded, want an error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: error %q does not name the option", tc.name, err)
		}
	}
	s := newSession(t, session.WithBufferSize(0), session.WithSubBufSize(0), session.WithMaxStringLen(0), nil)
	if s.Mode() != session.Discard || s.BufferSize() != session.DefaultBufferSize ||
		s.SubBufSize() != session.DefaultSubBufSize || s.MaxStringLen() != 1024 {
		t.Errorf("defaults: mode %v, buffer %d, sub-buffer %d, max string %d", s.Mode(), s.BufferSize(), s.SubBufSize(), s.MaxStringLen())
	}
}
