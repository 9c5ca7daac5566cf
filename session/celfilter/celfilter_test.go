package celfilter_test

import (
	"testing"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
	_ "github.com/tracemark/tracemark/session/celfilter"
)

var request = marker.Define2("celfilteroptin:request", marker.Int("status"), marker.String("path"))

// TestImportCompilesSource checks the opt-in: with the package imported,
// Enable takes CEL source, including what only the CEL program runs.
func TestImportCompilesSource(t *testing.T) {
	s, err := session.New("optin")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	for _, src := range []string{`status >= 500 && path.startsWith("/api")`, `string(status) == "503"`} {
		if _, err := s.Enable("celfilteroptin:request", src); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	request.Fire(503, "/api")
	request.Fire(200, "/api")
	request.Fire(501, "/x")
	s.Stop()
	if st := s.Stats(); st.Recorded != 1 || st.Filtered != 2 {
		t.Errorf("recorded %d, filtered %d; want 1 and 2", st.Recorded, st.Filtered)
	}
}
