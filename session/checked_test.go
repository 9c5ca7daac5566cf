package session

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tracemark/tracemark/internal/filterform"
	"github.com/tracemark/tracemark/marker"
)

var (
	checkedA = marker.Define2("sesschecked:a", marker.Int("status"), marker.String("path"))
	checkedB = marker.Define1("sesschecked:b", marker.String("path"))
)

// withoutCEL runs f as in a program that does not import
// session/celfilter.
// freshModule returns a marker module name no other call returns, so that
// tests defining markers after a rule can run again (go test -count=2):
// markers live as long as the process.
func freshModule(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, freshSeq.Add(1))
}

var freshSeq atomic.Int64

func withoutCEL(t *testing.T, f func()) {
	t.Helper()
	saved := filterform.Sources()
	filterform.RegisterSource(nil)
	defer filterform.RegisterSource(saved)
	f()
}

// TestCELSourceNeedsTheOptIn checks that a program without the CEL
// compiler refuses filter source, saying what to import, even for a glob
// that matches no marker yet, and still records without a filter.
func TestCELSourceNeedsTheOptIn(t *testing.T) {
	withoutCEL(t, func() {
		s, err := New("nocel")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Destroy()
		for _, pattern := range []string{"sesschecked:a", "sesschecked:none*"} {
			_, err := s.Enable(pattern, `status >= 500`)
			if !errors.Is(err, ErrFilterSource) || !errors.Is(err, ErrFilter) ||
				!strings.Contains(err.Error(), `import _ "github.com/tracemark/tracemark/session/celfilter"`) {
				t.Errorf("%s: got %v, want ErrFilterSource naming the package", pattern, err)
			}
		}
		if _, err := s.Enable("sesschecked:a", ""); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEnableCheckedWithoutCEL records with a checked form in a program
// without CEL: it keeps the events the form accepts, leaves out markers
// that lack its fields, and refuses what does not type-check or costs
// too much.
func TestEnableCheckedWithoutCEL(t *testing.T) {
	withoutCEL(t, func() {
		s, err := New("checked", WithBufferSize(1<<20))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Destroy()
		form := `{"v":1,"expr":{"op":"and","args":[` +
			`{"op":"ge","args":[{"op":"field","field":"status"},{"op":"int","int":500}]},` +
			`{"op":"startsWith","args":[{"op":"field","field":"path"},{"op":"string","str":"/api"}]}]}}`
		r, err := s.EnableChecked("sesschecked:*", `status >= 500 && path.startsWith("/api")`, []byte(form))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		want := 0
		for i := range 100 {
			path := []string{"/api/x", "/static"}[i%2]
			checkedA.Fire(450+i, path)
			if 450+i >= 500 && i%2 == 0 {
				want++
			}
			checkedB.Fire(path)
		}
		s.Stop()
		st := s.Stats()
		if st.Recorded != uint64(want) || st.Filtered != uint64(100-want) {
			t.Errorf("recorded %d, filtered %d; want %d, %d", st.Recorded, st.Filtered, want, 100-want)
		}
		var lo *LeftOutError
		if got := r.Refused(); len(got) != 1 || !errors.As(got[0], &lo) || lo.Marker != "sesschecked:b" || strings.Join(lo.Missing, ",") != "status" {
			t.Errorf("refused %v, want sesschecked:b left out for lacking status", got)
		}
		for _, tc := range []struct{ form, want string }{
			{`{"v":1,"expr":{"op":"ge","args":[{"op":"field","field":"path"},{"op":"int","int":1}]}}`, ">= does not apply to (string, int)"},
			{`{"v":1,"expr":{"op":"matches","args":[{"op":"field","field":"path"},{"op":"string","str":"^/api/[0-9]+$"}]}}`, "too expensive: estimated cost up to 1333, the limit is 20"},
			{`{"v":1,"expr":{"op":"frobnicate"}}`, `unknown operator "frobnicate"`},
		} {
			_, err := s.EnableChecked("sesschecked:a", "x", []byte(tc.form))
			if !errors.Is(err, ErrFilter) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: got %v, want %q", tc.form, err, tc.want)
			}
		}
	})
}

// TestCheckedFormRefusedForLaterMarkerOfOtherTypes checks a marker defined
// after a checked rule, whose field has another type than the form was
// checked with: it is refused, with the type error, and not recorded.
func TestCheckedFormRefusedForLaterMarkerOfOtherTypes(t *testing.T) {
	withoutCEL(t, func() {
		s, err := New("checked-later")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Destroy()
		form := `{"v":1,"expr":{"op":"ge","args":[{"op":"field","field":"status"},{"op":"int","int":500}]}}`
		mod := freshModule("sesscheckedlater")
		r, err := s.EnableChecked(mod+":*", "status >= 500", []byte(form))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		later := marker.Define1(mod+":event", marker.String("status"))
		later.Fire("503")
		if got := r.Refused(); len(got) != 1 || !strings.Contains(got[0].Error(), ">= does not apply to (string, int)") {
			t.Fatalf("refused %v, want the type error", got)
		}
		if st := s.Stats(); st.Recorded != 0 {
			t.Errorf("recorded %d events of a refused marker", st.Recorded)
		}
	})
}
