package session

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tracemark/tracemark/marker"
)

var diffMarker = marker.Define6("sessdiff:event",
	marker.Int("status"), marker.Uint64("bytes"), marker.Float64("ratio"),
	marker.String("path"), marker.Bool("cached"), marker.Duration("latency"))

// TestNativeFiltersAgreeWithCEL evaluates each expression natively and
// with the CEL program on many events and requires the same answers.
func TestNativeFiltersAgreeWithCEL(t *testing.T) {
	exprs := []struct {
		src    string
		native bool
	}{
		{`status >= 500`, true},
		{`500 <= status`, true},
		{`status == 404 || status < 0`, true},
		{`!(status != 200)`, true},
		{`bytes > 1000u && bytes <= 5000u`, true},
		{`ratio < 0.5 || ratio >= 2.0`, true},
		{`ratio == 1.0`, true},
		{`path.startsWith("/api") && !path.endsWith(".png")`, true},
		{`path.contains("user")`, true},
		{`path == "/api/users" || path > "/z"`, true},
		{`cached`, true},
		{`cached == false && true`, true},
		{`latency > duration("100ms")`, true},
		{`duration("1s") >= latency`, true},
		{`size(path) > 5`, true},
		{`path.size() <= 3`, true},
		{`7 == size(path)`, true},
		{`status + 1 > 500`, true},
		{`string(status).matches("^5..$")`, false},
		{`status in [200, 404]`, true},
		{`bytes in [1000u, 5001u]`, true},
		{`path in ["/api", "/zz", ""]`, true},
		{`latency in [duration("1s"), duration("5ms")]`, true},
		{`ratio in [0.5, 1.0]`, true},
		{`status + 1 in [200, 404]`, true},
		{`string(status) == "200"`, false},
	}
	paths := []string{"", "/", "/api", "/api/users", "/api/users/1.png", "/static/x.png", "/zz", "héllo/user"}
	rng := rand.New(rand.NewPCG(1, 2))
	// A cap of 4 bytes cuts most paths: both evaluators must see the same
	// cut strings.
	for _, tc := range exprs {
		for _, maxString := range []int{1024, 4} {
			diffOne(t, tc.src, tc.native, maxString, paths, rng)
		}
	}
}

// diffOne checks one expression's native evaluator against its CEL program
// on random events, with string fields cut to maxString bytes.
func diffOne(t *testing.T, src string, native bool, maxString int, paths []string, rng *rand.Rand) {
	t.Helper()
	f, err := compileFilter(src, nil, diffMarker.Info(), filterLimits{maxString: maxString})
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if (f.native != nil) != native {
		t.Errorf("%s: native path %v, want %v", src, f.native != nil, native)
		return
	}
	if f.native == nil {
		return
	}
	disagreements := 0
	p, _ := marker.Register("sessdiff:event", func(e *marker.Event) {
		if f.native(e) != (f.eval(e) == accepted) {
			disagreements++
		}
	})
	for range 2000 {
		status := []int{-1, 0, 200, 404, 499, 500, 503, rng.IntN(1000)}[rng.IntN(8)]
		bytes := []uint64{0, 1000, 1001, 5000, 5001, math.MaxUint64, rng.Uint64()}[rng.IntN(7)]
		ratio := []float64{0, 0.49, 0.5, 1, 2, math.NaN(), math.Inf(1), rng.Float64() * 3}[rng.IntN(8)]
		latency := time.Duration(rng.IntN(2000)) * time.Millisecond
		diffMarker.Fire(status, bytes, ratio, paths[rng.IntN(len(paths))], rng.IntN(2) == 0, latency)
	}
	p.Unregister()
	if disagreements != 0 {
		t.Errorf("%s (cap %d): native and CEL disagree on %d of 2000 events", src, maxString, disagreements)
	}
}
