package wire_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/internal/wire"
)

func TestCheckClient(t *testing.T) {
	this := wire.ProtocolString(wire.Version, wire.Revision)
	for _, tc := range []struct{ header, code string }{
		{"", ""},
		{this, ""},
		{wire.ProtocolString(wire.Version, wire.Revision+1), ""}, // a newer client reads older agents
		{wire.ProtocolString(wire.Version, wire.Revision-1), wire.CodeProtocol},
		{"1", wire.CodeBadRequest},
		{"1.x", wire.CodeBadRequest},
		{"1.-1", wire.CodeBadRequest},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set(wire.HeaderProtocol, tc.header)
		}
		err := wire.CheckClient(h)
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%q: %v", tc.header, err)
		case tc.code != "" && !wire.IsCode(err, tc.code):
			t.Errorf("%q: %v, want code %s", tc.header, err, tc.code)
		case tc.code == wire.CodeProtocol && (!strings.Contains(err.Error(), "protocol "+this) ||
			!strings.Contains(err.Error(), "speaks "+tc.header) || !strings.Contains(err.Error(), "upgrade tracemark")):
			t.Errorf("%q: %v, want both versions named and an upgrade advised", tc.header, err)
		}
	}
}
