package session

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tracemark/tracemark/marker"
)

var costMarker = marker.Define3("sesscost:request", marker.Int("status"), marker.String("path"), marker.Bytes("body"))

// nested30 is four nested comprehensions over [1..30]: 380 bytes, type
// correct, 810,000 iterations per event.
var nested30 = func() string {
	l := intList(30)
	return l + ".all(a, " + l + ".all(b, " + l + ".all(c, " + l + ".exists(d, a + b + c + d == status))))"
}()

// TestFilterCostRefusedAtEnable checks that Enable refuses filters whose
// estimated cost exceeds the budget, saying what the estimate and the limit
// are and why, and accepts the usual ones.
func TestFilterCostRefusedAtEnable(t *testing.T) {
	tests := []struct {
		name, filter string
		want         []string // in the error; nil: accepted
	}{
		{"nested comprehensions", nested30, []string{"too expensive: estimated cost up to 10921036,", "the limit is 20", "multiplies the cost of its body by the length of its list"}},
		{"regex on a field", `path.matches("^/api/[0-9]+$")`, []string{"too expensive", "a regular expression costs the length of its input, up to 1024 bytes"}},
		{"regex pattern from a field", `"x".matches(path)`, []string{"too expensive"}},
		{"field in field", `path.contains(path)`, []string{"too expensive", "string functions cost"}},
		{"native searches", `path.contains("/api/v1/users") || path.contains("/api/v2/users") || path.contains("/api/v3/users")`, []string{"too expensive: estimated cost up to 25,"}},
		{"long comprehension", intList(10) + `.exists(x, x == status)`, []string{"too expensive", "comprehension"}},
		{"concatenation", `path + path == "x"`, []string{"too expensive"}},
		{"size of bytes copy", `size(string(body)) > 3`, []string{"too expensive"}},

		{"comparisons", `status >= 500 && path.startsWith("/api")`, nil},
		{"one search", `path.contains("/api/v1/users")`, nil},
		{"two searches", `path.contains("/api/v1/users") || path.contains("/api/v2/users")`, nil},
		{"two short searches", `path.contains("user") && !path.contains(".png")`, nil},
		{"list", `status in [200, 301, 302, 404, 500, 502, 503]`, nil},
		{"size", `size(path) > 100`, nil},
		{"regex on a short string", `string(status).matches("^5..$")`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New("cost")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Destroy()
			_, err = s.Enable("sesscost:request", tt.filter)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrFilterCost) || !errors.Is(err, ErrFilter) {
				t.Fatalf("got %v, want an ErrFilterCost", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is several lines:\n%v", err)
			}
		})
	}
}

// TestFilterCostCheckedForLaterMarkers checks that a marker defined after
// the rule is refused by an expensive filter too, and says so in Refused.
func TestFilterCostCheckedForLaterMarkers(t *testing.T) {
	s, err := New("cost-later")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	mod := freshModule("sesscostlater")
	r, err := s.Enable(mod+":*", nested30)
	if err != nil {
		t.Fatal(err) // no marker matches yet
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	later := marker.Define1(mod+":event", marker.Int("status"))
	later.Fire(1)
	if got := r.Refused(); len(got) != 1 || !errors.Is(got[0], ErrFilterCost) {
		t.Fatalf("refused %v, want the cost error", got)
	}
	if st := s.Stats(); st.Recorded != 0 || st.Filtered != 0 {
		t.Errorf("stats %+v: the marker should not be recorded", st)
	}
}

// TestFilterOverCostDropsAndCounts runs a filter whose run-time cost limit
// is below what it costs: every event is dropped and counted as filtered
// and over cost, the firing goroutine carries on, and another rule's
// events are still recorded.
func TestFilterOverCostDropsAndCounts(t *testing.T) {
	s, err := New("overcost")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	s.filterRunCost = 3 // the CEL program costs 5 or more per event; it is compiled again at Start
	if _, err := s.Enable("sesscost:request", `string(status) != "x" && string(status + 1) != "x" && string(status + 2) != "x"`); err != nil {
		t.Fatal(err)
	}
	other := marker.Define1("sesscostother:event", marker.Int("status"))
	if _, err := s.Enable("sesscostother:event", `status >= 0`); err != nil { // native: no CEL program
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		costMarker.Fire(i, "/a", nil)
		other.Fire(i)
	}
	s.Stop()
	st := s.Stats()
	if st.Filtered != n || st.OverCost != n || st.Recorded != n {
		t.Fatalf("filtered %d, over cost %d, recorded %d; want %d, %d, %d", st.Filtered, st.OverCost, st.Recorded, n, n, n)
	}
	for _, m := range st.Markers {
		want := uint64(0)
		if m.Name == "sesscost:request" {
			want = n
		}
		if m.OverCost != want || m.Filtered != want {
			t.Errorf("%s: over cost %d, filtered %d, want %d", m.Name, m.OverCost, m.Filtered, want)
		}
	}
}

// TestFilterSetVerdict checks how the filters of several rules on one
// marker combine: any acceptance records, and an event none accepts counts
// as over cost if one of them was stopped.
func TestFilterSetVerdict(t *testing.T) {
	compile := func(src string, runCost uint64) *filter {
		f, err := compileFilter(src, nil, costMarker.Info(), filterLimits{maxString: 1024, runCost: runCost})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// string() runs on the CEL program, which has a run-time limit.
	capped := compile(`string(status) != "x"`, 1)
	yes, no := compile(`string(status) != "x"`, 0), compile(`string(status) == "x"`, 0)
	tests := []struct {
		name    string
		filters []*filter
		want    verdict
	}{
		{"accepted beats over cost", []*filter{capped, yes}, accepted},
		{"over cost beats rejected", []*filter{no, capped}, overCost},
		{"rejected", []*filter{no}, rejected},
	}
	for _, tt := range tests {
		fs := &filterSet{filters: tt.filters, unpinned: true}
		var got verdict
		p, _ := marker.Register("sesscost:request", func(e *marker.Event) { got = fs.accept(e) })
		costMarker.Fire(7, "/", nil)
		p.Unregister()
		if got != tt.want {
			t.Errorf("%s: verdict %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestCELFilterSurvivesStackGrowth fires a marker with a CEL filter from
// fresh goroutines, whose small stacks grow while the program runs, with
// collections running meanwhile: the program must read the fields right
// and leave no pointer into the old stack behind (which crashes the
// collector).
func TestCELFilterSurvivesStackGrowth(t *testing.T) {
	s, err := New("stackgrowth", WithBufferSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if _, err := s.Enable("sesscost:request", `string(status) == "7" && path == "/keep"`); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	const goroutines, rounds = 8, 300
	var rng atomic.Uint64
	done := make(chan struct{})
	var gcs sync.WaitGroup
	gcs.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				runtime.GC()
			}
		}
	})
	for range rounds {
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				path := strings.Clone("/keep")
				// Fire from every depth, so that some firings outgrow the
				// stack inside the program.
				atDepth(rng.Add(1)%64, func() {
					costMarker.Fire(7, path, []byte{1, 2, 3})
					costMarker.Fire(8, path, []byte{1, 2, 3})
				})
			})
		}
		wg.Wait()
	}
	close(done)
	gcs.Wait()
	s.Stop()
	st := s.Stats()
	if st.Recorded != goroutines*rounds || st.Filtered != goroutines*rounds {
		t.Fatalf("recorded %d, filtered %d, want %d each", st.Recorded, st.Filtered, goroutines*rounds)
	}
}

// atDepth calls f under d frames of 256 bytes.
//
//go:noinline
func atDepth(d uint64, f func()) {
	var pad [256]byte
	if d == 0 {
		f()
		return
	}
	atDepth(d-1, f)
	runtime.KeepAlive(&pad)
}
