package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/wire"
)

// aggregator counts events per key and builds log2 histograms of a field,
// like bpftrace's count() and hist() maps.
type aggregator struct {
	by, hist string // field names, or ""
	counts   map[aggKey]uint64
	hists    map[aggKey]*histogram
	total    uint64
	// without counts events of markers that lack the --by or --hist
	// field: they are counted under the marker name alone.
	without uint64
}

// aggKey is a marker and the value of its --by field ("" without --by).
type aggKey struct{ marker, value string }

func newAggregator(by, hist string) *aggregator {
	return &aggregator{by: by, hist: hist, counts: map[aggKey]uint64{}, hists: map[aggKey]*histogram{}}
}

func (g *aggregator) add(r *wire.Record) error {
	g.total++
	k := aggKey{marker: r.Class.Name}
	if g.by != "" {
		i := fieldIndex(r.Class, g.by)
		if i < 0 {
			g.without++
			g.counts[k]++
			return nil
		}
		k.value = keyString(r.Class.Fields[i].Kind, r.Fields[i])
	}
	g.counts[k]++
	if g.hist != "" {
		if i := fieldIndex(r.Class, g.hist); i >= 0 && numeric(r.Fields[i]) {
			h := g.hists[k]
			if h == nil {
				h = &histogram{duration: r.Class.Fields[i].Kind == "duration"}
				g.hists[k] = h
			}
			h.add(r.Fields[i])
		}
	}
	return nil
}

func numeric(v ctf.Value) bool { return v.Kind == ctf.Int || v.Kind == ctf.Uint || v.Kind == ctf.Float }

// histogram is a log2 histogram: bucket 0 holds negative values, bucket 1
// zero, bucket k+2 the values in [2^k, 2^(k+1)). Floats are truncated.
type histogram struct {
	duration   bool
	buckets    [66]uint64
	count      uint64
	sum        float64
	minV, maxV int64
}

func (h *histogram) add(v ctf.Value) {
	var x int64
	switch v.Kind {
	case ctf.Int:
		x = v.Int
	case ctf.Uint:
		x = int64(min(v.Uint, math.MaxInt64)) // larger ones share the last bucket
	default:
		x = int64(max(min(v.Float, math.MaxInt64), math.MinInt64))
	}
	if h.count == 0 || x < h.minV {
		h.minV = x
	}
	if h.count == 0 || x > h.maxV {
		h.maxV = x
	}
	h.count++
	h.sum += float64(x)
	h.buckets[bucketOf(x)]++
}

func bucketOf(x int64) int {
	switch {
	case x < 0:
		return 0
	case x == 0:
		return 1
	}
	return bits.Len64(uint64(x)) + 1 // 2^k <= x < 2^(k+1) has Len k+1
}

// bucketRange labels a bucket: "[1K, 2K)", "[1µs, 2µs)", "(..., 0)".
func (h *histogram) bucketRange(b int) (lo, hi string) {
	switch b {
	case 0:
		return "...", "0"
	case 1:
		return "0", "1"
	}
	k := uint(b - 2)
	return h.format(1 << k), h.format(1 << (k + 1))
}

func (h *histogram) format(x uint64) string {
	if h.duration {
		return shortDuration(time.Duration(x))
	}
	for _, u := range []struct {
		shift  uint
		suffix string
	}{{60, "E"}, {50, "P"}, {40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if x >= 1<<u.shift && x%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", x>>u.shift, u.suffix)
		}
	}
	return fmt.Sprint(x)
}

func (h *histogram) value(x int64) string {
	if h.duration {
		return shortDuration(time.Duration(x))
	}
	return fmt.Sprint(x)
}

// shortDuration formats d with three significant digits: 16.4µs, 1.05ms.
// Power-of-two bucket bounds are not round numbers in any unit, and
// their full digits would only get in the way.
func shortDuration(d time.Duration) string {
	units := []struct {
		size time.Duration
		name string
	}{{time.Second, "s"}, {time.Millisecond, "ms"}, {time.Microsecond, "µs"}}
	neg := ""
	if d < 0 {
		neg, d = "-", -d
	}
	for _, u := range units {
		if d >= u.size {
			return neg + strconv.FormatFloat(float64(d)/float64(u.size), 'g', 3, 64) + u.name
		}
	}
	return fmt.Sprintf("%s%dns", neg, d)
}

// keys returns the count keys, the biggest counts first.
func (g *aggregator) keys() []aggKey {
	keys := make([]aggKey, 0, len(g.counts))
	for k := range g.counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b aggKey) int {
		if c := cmp.Compare(g.counts[b], g.counts[a]); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.marker, b.marker), cmp.Compare(a.value, b.value))
	})
	return keys
}

// render writes the counts table and the histograms.
func (g *aggregator) render(w io.Writer, header string) {
	fmt.Fprintln(w, header)
	cols := []string{"COUNT", "MARKER"}
	if g.by != "" {
		cols = append(cols, strings.ToUpper(g.by))
	}
	t := newTable(w, cols...)
	for _, k := range g.keys() {
		row := []string{fmt.Sprint(g.counts[k]), k.marker}
		if g.by != "" {
			row = append(row, dash(k.value))
		}
		t.row(row...)
	}
	t.flush()
	g.renderHists(w)
}

// renderHists writes the histograms, in the order of the counts table.
func (g *aggregator) renderHists(w io.Writer) {
	for _, k := range g.keys() {
		if h := g.hists[k]; h != nil {
			g.renderHist(w, k, h)
		}
	}
}

const barWidth = 40

func (g *aggregator) renderHist(w io.Writer, k aggKey, h *histogram) {
	name := k.marker
	if g.by != "" {
		name += ", " + g.by + "=" + dash(k.value)
	}
	avg := int64(h.sum / float64(h.count))
	fmt.Fprintf(w, "\n@%s[%s]: count %d, avg %s, min %s, max %s\n", g.hist, name, h.count, h.value(avg), h.value(h.minV), h.value(h.maxV))
	first, last := -1, 0
	var peak uint64
	for b, n := range h.buckets {
		if n > 0 {
			if first < 0 {
				first = b
			}
			last, peak = b, max(peak, n)
		}
	}
	t := newTable(w)
	for b := first; b <= last; b++ {
		n := h.buckets[b]
		bar := strings.Repeat("@", int(n*barWidth/peak))
		lo, hi := h.bucketRange(b)
		t.row(fmt.Sprintf("[%s, %s)", lo, hi), fmt.Sprint(n), "|"+bar+strings.Repeat(" ", barWidth-len(bar))+"|")
	}
	t.flush()
}

// statsResult is the --json form of the final table.
type statsResult struct {
	Events     uint64       `json:"events"`
	Lost       uint64       `json:"lost"`
	By         string       `json:"by,omitempty"`
	Counts     []countRow   `json:"counts"`
	Hist       string       `json:"hist,omitempty"`
	Histograms []histResult `json:"histograms,omitempty"`
}

type countRow struct {
	Marker string `json:"marker"`
	Value  string `json:"value,omitempty"`
	Count  uint64 `json:"count"`
}

type histResult struct {
	Marker  string        `json:"marker"`
	Value   string        `json:"value,omitempty"`
	Count   uint64        `json:"count"`
	Sum     float64       `json:"sum"`
	Min     int64         `json:"min"`
	Max     int64         `json:"max"`
	Buckets []bucketCount `json:"buckets"`
}

// bucketCount is one bucket: values in [Low, High), Low absent for the
// negative bucket.
type bucketCount struct {
	Low   *int64 `json:"low,omitempty"`
	High  int64  `json:"high"`
	Count uint64 `json:"count"`
}

func (g *aggregator) result(lost uint64) statsResult {
	res := statsResult{Events: g.total, Lost: lost, By: g.by, Hist: g.hist, Counts: []countRow{}}
	for _, k := range g.keys() {
		res.Counts = append(res.Counts, countRow{Marker: k.marker, Value: k.value, Count: g.counts[k]})
		if h := g.hists[k]; h != nil {
			res.Histograms = append(res.Histograms, h.result(k))
		}
	}
	return res
}

func (h *histogram) result(k aggKey) histResult {
	hr := histResult{Marker: k.marker, Value: k.value, Count: h.count, Sum: h.sum, Min: h.minV, Max: h.maxV}
	for b, n := range h.buckets {
		if n == 0 {
			continue
		}
		bc := bucketCount{Count: n}
		switch {
		case b == 0:
			bc.High = 0
		case b == 1:
			bc.Low, bc.High = new(int64), 1
		default:
			lo := int64(1) << (b - 2)
			bc.Low = &lo
			bc.High = lo * 2
			if b-2 == 62 {
				bc.High = math.MaxInt64
			}
		}
		hr.Buckets = append(hr.Buckets, bc)
	}
	return hr
}
