package session

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/marker"
)

var benchFilterMarker = marker.Define3("sessbench:filter", marker.Int64("status"), marker.Int64("size"), marker.String("path"))

func BenchmarkFilterEval(b *testing.B) {
	for _, tc := range []struct{ name, src string }{
		{"reject", `status >= 500 && path.startsWith("/api")`},
		{"accept", `status >= 200 && path.startsWith("/api")`},
		{"arith", `status + 1 >= 200 && path.startsWith("/api")`},
		{"cel", `string(status) != "" && status >= 200 && path.startsWith("/api")`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f, err := compileFilter(tc.src, nil, benchFilterMarker.Info(), filterLimits{maxString: 1024})
			if err != nil {
				b.Fatal(err)
			}
			p, _ := marker.Register("sessbench:filter", func(e *marker.Event) { f.accept(e) })
			defer p.Unregister()
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				benchFilterMarker.Fire(404, 1234, "/api/users/1234")
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// costShapes are the expensive kinds of filter: each shape makes a filter
// that grows with k, and the event makes it do all its work (no short
// circuit, strings at the 1 KiB cap that string searches do not find
// early).
var costShapes = []struct {
	name   string
	filter func(k int) string
	status int64
	path   string
}{
	{"exists", func(k int) string { return intList(k) + ".exists(x, x == status)" }, -1, ""},
	{"nested", func(k int) string {
		return intList(k) + ".exists(a, " + intList(k) + ".exists(b, a + b == status))"
	}, -1, ""},
	{"filter", func(k int) string { return intList(k) + ".filter(x, x != status).size() == 0" }, -1, ""},
	{"in", func(k int) string { return "status in " + intList(k) }, -1, ""},
	{"arith", func(k int) string { return strings.Repeat("status + ", k) + "0 == 1" }, 1, ""},
	{"size", func(k int) string { return "size(path) == " + strings.Repeat("status + ", k) + "0" }, 0, strings.Repeat("é", 512)},
	{"double", func(k int) string { return "double(path) == " + strings.Repeat("double(status) + ", k) + "0.0" }, 0, strings.Repeat("0", 1024)},
	{"contains-cel", func(k int) string {
		return `path.contains("` + strings.Repeat("a", k) + `b") || status + 1 == 0`
	}, 0, strings.Repeat("a", 1024)},
	{"regex", func(k int) string { return `string(status).matches("` + strings.Repeat("-?", k) + `x")` }, math.MinInt64, ""},
	{"string-field", func(k int) string { return `path != "" && ` + strings.Repeat("status + ", k) + "0 == 1" }, 1, strings.Repeat("a", 1024)},
	{"contains-native", func(k int) string { return `path.contains("` + strings.Repeat("a", k) + `b")` }, 0, strings.Repeat("a", 1024)},
	{"contains-native-or", func(k int) string {
		terms := make([]string, k)
		for i := range terms {
			terms[i] = `path.contains("aaaaaaaaaaaaaaa` + string(rune('b'+i%20)) + `")`
		}
		return strings.Join(terms, " || ")
	}, 0, strings.Repeat("a", 1024)},
}

func intList(k int) string {
	parts := make([]string, k)
	for i := range parts {
		parts[i] = strconv.Itoa(i + 1)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// mostExpensiveAccepted returns the filter of the shape with the largest k
// that is accepted, or "" if none is.
func mostExpensiveAccepted(tb testing.TB, shape func(int) string) (src string, k int) {
	tb.Helper()
	for k = 1; k <= 5000; k++ {
		if _, err := compileFilter(shape(k), nil, benchFilterMarker.Info(), filterLimits{maxString: 1024}); err != nil {
			if !errors.Is(err, ErrFilterCost) {
				tb.Fatalf("k=%d: %v", k, err)
			}
			if k == 1 {
				return "", 0
			}
			return shape(k - 1), k - 1
		}
	}
	tb.Fatalf("%s: no limit up to k=5000", shape(1))
	return "", 0
}

// BenchmarkFilterMostExpensiveAccepted runs, for each kind of expensive
// filter, the most expensive one the budget accepts on events that make it
// do all its work: the target is at most 2 µs per event.
func BenchmarkFilterMostExpensiveAccepted(b *testing.B) {
	for _, sh := range costShapes {
		src, k := mostExpensiveAccepted(b, sh.filter)
		if src == "" {
			b.Logf("%s: refused at every size", sh.name)
			continue
		}
		f, err := compileFilter(src, nil, benchFilterMarker.Info(), filterLimits{maxString: 1024})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s/k=%d/cost=%d/native=%v", sh.name, k, f.cost, f.native != nil), func(b *testing.B) {
			verdicts := map[verdict]int{}
			p, _ := marker.Register("sessbench:filter", func(e *marker.Event) { verdicts[f.accept(e)]++ })
			defer p.Unregister()
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				benchFilterMarker.Fire(sh.status, 0, sh.path)
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			if verdicts[overCost] != 0 {
				b.Fatalf("%s: %d events over the run-time cost limit", src, verdicts[overCost])
			}
		})
	}
}
