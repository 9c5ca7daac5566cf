package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/wire"
)

// aggregator counts events per key and builds histograms and statistics
// of a field, like bpftrace's count(), hist(), lhist(), sum(), avg(),
// min() and max() maps.
type aggregator struct {
	aggSpec
	rows  map[string]*aggRow
	total uint64
	// without counts events of markers that lack a --by field: they are
	// counted under the marker name alone.
	without uint64
}

// aggSpec says what an aggregator computes.
type aggSpec struct {
	by    []string // key fields, or none: per marker
	hist  string   // log2 histogram of this field, or ""
	lhist *linSpec // linear histogram, or nil
	value string   // sum, avg, min and max of this field, or ""
	top   int      // show only the biggest rows (0: all)
}

// aggRow is one key: a marker and the values of its --by fields.
type aggRow struct {
	marker string
	values []string // one per --by field; nil if the marker lacks one
	// attrs are the values of the first event of the row, typed as
	// its log records' attributes are (otlpKeyValue), for stats --otlp.
	attrs []any
	count uint64
	hist  *histogram // log2, or linear with lhist
	val   *numStats  // --value
}

// exactKey is the part of a row's key for a field whose text (keyString)
// is shown: the text itself, but strings and bytes by their whole value,
// length first, since their text is cleaned and a long byte string's cut
// (two 64-byte hashes with the same first 32 bytes are two rows).
func exactKey(text string, v ctf.Value) string {
	if v.Kind != ctf.String && v.Kind != ctf.Bytes {
		return text
	}
	return strconv.Itoa(len(v.Bytes)) + ":" + string(v.Bytes)
}

func newAggregator(spec aggSpec) *aggregator {
	return &aggregator{aggSpec: spec, rows: map[string]*aggRow{}}
}

// reset forgets everything counted: the per-interval mode's clear().
func (g *aggregator) reset() {
	g.rows, g.total, g.without = map[string]*aggRow{}, 0, 0
}

func (g *aggregator) add(r *wire.Record) error {
	g.total++
	var values []string
	key := r.Class.Name
	for _, f := range g.by {
		i := fieldIndex(r.Class, f)
		if i < 0 {
			values = nil
			key = r.Class.Name
			g.without++
			break
		}
		v := keyString(r.Class.Fields[i].Kind, r.Fields[i])
		values = append(values, v)
		key += "\x00" + exactKey(v, r.Fields[i])
	}
	row := g.rows[key]
	if row == nil {
		row = &aggRow{marker: r.Class.Name, values: values}
		if values != nil {
			for _, f := range g.by {
				i := fieldIndex(r.Class, f)
				row.attrs = append(row.attrs, otlpKeyValue(r.Class.Fields[i].Kind, r.Fields[i]))
			}
		}
		g.rows[key] = row
	}
	row.count++
	if values == nil && len(g.by) > 0 {
		return nil // no histogram or statistics for a marker without the key
	}
	if f := cmp.Or(g.hist, g.lhistField()); f != "" {
		if i := fieldIndex(r.Class, f); i >= 0 && numeric(r.Fields[i]) {
			if row.hist == nil {
				row.hist = &histogram{numStats: numStats{duration: r.Class.Fields[i].Kind == "duration"}, lin: g.lhist}
			}
			row.hist.add(r.Fields[i])
		}
	}
	if g.value != "" {
		if i := fieldIndex(r.Class, g.value); i >= 0 && numeric(r.Fields[i]) {
			if row.val == nil {
				row.val = &numStats{duration: r.Class.Fields[i].Kind == "duration"}
			}
			row.val.add(toInt(r.Fields[i]))
		}
	}
	return nil
}

func (g *aggregator) lhistField() string {
	if g.lhist == nil {
		return ""
	}
	return g.lhist.field
}

func numeric(v ctf.Value) bool { return v.Kind == ctf.Int || v.Kind == ctf.Uint || v.Kind == ctf.Float }

// numStats are the count, sum, minimum and maximum of a field.
type numStats struct {
	duration   bool
	count      uint64
	sum        float64
	minV, maxV int64
}

func (n *numStats) add(x int64) {
	if n.count == 0 || x < n.minV {
		n.minV = x
	}
	if n.count == 0 || x > n.maxV {
		n.maxV = x
	}
	n.count++
	n.sum += float64(x)
}

func (n *numStats) avg() int64 { return int64(n.sum / float64(max(n.count, 1))) }

func (n *numStats) value(x int64) string {
	if n.duration {
		return shortDuration(time.Duration(x))
	}
	return fmt.Sprint(x)
}

// toInt converts a numeric value for histograms and statistics. Floats
// are truncated; unsigned values beyond int64 saturate.
func toInt(v ctf.Value) int64 {
	switch v.Kind {
	case ctf.Int:
		return v.Int
	case ctf.Uint:
		return int64(min(v.Uint, math.MaxInt64))
	}
	return int64(max(min(v.Float, math.MaxInt64), math.MinInt64))
}

// histogram is a log2 histogram: bucket 0 holds negative values, bucket 1
// zero, bucket k+2 the values in [2^k, 2^(k+1)). With lin it is linear
// instead (see linSpec).
type histogram struct {
	numStats
	lin     *linSpec
	buckets [66]uint64
	linear  []uint64 // with lin: below min, one per step, at or above max
}

func (h *histogram) add(v ctf.Value) {
	x := toInt(v)
	h.numStats.add(x)
	if h.lin != nil {
		if h.linear == nil {
			h.linear = make([]uint64, h.lin.buckets()+2)
		}
		h.linear[h.lin.bucket(x)]++
		return
	}
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

// linSpec is a linear histogram, bpftrace's lhist(field, min, max, step):
// buckets of width step from min to max, and one each for the values
// below and above. --lhist latency:0:100ms:10ms.
type linSpec struct {
	field          string
	lo, hi, step   int64
	durationBounds bool // the bounds were given as durations
}

// parseLinSpec parses FIELD:MIN:MAX:STEP; the numbers are integers or,
// all of them, Go durations.
func parseLinSpec(s string) (*linSpec, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 || parts[0] == "" {
		return nil, usagef("--lhist %s: want FIELD:MIN:MAX:STEP, such as latency:0:100ms:10ms or status:100:600:100", s)
	}
	spec := &linSpec{field: parts[0]}
	var nums [3]int64
	durs := 0
	for i, p := range parts[1:] {
		if n, err := strconv.ParseInt(p, 10, 64); err == nil {
			nums[i] = n
			continue
		}
		d, err := time.ParseDuration(p)
		if err != nil {
			return nil, usagef("--lhist %s: %q is neither an integer nor a duration", s, p)
		}
		nums[i] = int64(d)
		durs++
	}
	spec.lo, spec.hi, spec.step = nums[0], nums[1], nums[2]
	spec.durationBounds = durs > 0
	switch {
	case spec.step <= 0:
		return nil, usagef("--lhist %s: the step must be positive", s)
	case spec.hi <= spec.lo:
		return nil, usagef("--lhist %s: MAX must be above MIN", s)
	case (spec.hi-spec.lo)/spec.step > 1000:
		return nil, usagef("--lhist %s: %d buckets; at most 1000", s, (spec.hi-spec.lo)/spec.step)
	}
	return spec, nil
}

// buckets is the number of step-wide buckets between lo and hi.
func (l *linSpec) buckets() int { return int((l.hi - l.lo + l.step - 1) / l.step) }

// bucket returns the index of x: 0 below lo, 1 + (x-lo)/step up to hi,
// the last at or above hi.
func (l *linSpec) bucket(x int64) int {
	switch {
	case x < l.lo:
		return 0
	case x >= l.hi:
		return l.buckets() + 1
	}
	return 1 + int((x-l.lo)/l.step)
}

// bucketRange labels a bucket: "[1K, 2K)", "[1µs, 2µs)", "(..., 0)".
func (h *histogram) bucketRange(b int) (lo, hi string) {
	if l := h.lin; l != nil {
		switch {
		case b == 0:
			return "...", h.linValue(l.lo)
		case b == len(h.linear)-1:
			return h.linValue(l.hi), "..."
		}
		low := l.lo + int64(b-1)*l.step
		return h.linValue(low), h.linValue(min(low+l.step, l.hi))
	}
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

// linValue formats a linear bucket bound: as a duration if the field is
// one or the bounds were given as durations.
func (h *histogram) linValue(x int64) string {
	if h.duration || h.lin.durationBounds {
		return shortDuration(time.Duration(x))
	}
	return fmt.Sprint(x)
}

// keys returns the rows, the biggest counts first.
func (g *aggregator) keys() []*aggRow {
	rows := slices.Collect(maps.Values(g.rows))
	slices.SortFunc(rows, func(a, b *aggRow) int {
		if c := cmp.Compare(b.count, a.count); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.marker, b.marker), slices.Compare(a.values, b.values))
	})
	return rows
}

// shown returns the rows to show (--top) and how many are left out.
func (g *aggregator) shown() ([]*aggRow, int) {
	rows := g.keys()
	if g.top > 0 && len(rows) > g.top {
		return rows[:g.top], len(rows) - g.top
	}
	return rows, 0
}

// render writes the counts table and the histograms.
func (g *aggregator) render(w io.Writer, header string) {
	fmt.Fprintln(w, header)
	cols := []string{"COUNT", "MARKER"}
	for _, f := range g.by {
		cols = append(cols, strings.ToUpper(f))
	}
	if g.value != "" {
		cols = append(cols, "SUM", "AVG", "MIN", "MAX")
	}
	t := newTable(w, cols...)
	rows, more := g.shown()
	for _, r := range rows {
		row := []string{fmt.Sprint(r.count), r.marker}
		for i := range g.by {
			v := "-"
			if r.values != nil {
				v = dash(r.values[i])
			}
			row = append(row, v)
		}
		if g.value != "" {
			if v := r.val; v != nil {
				row = append(row, v.value(int64(v.sum)), v.value(v.avg()), v.value(v.minV), v.value(v.maxV))
			} else {
				row = append(row, "-", "-", "-", "-")
			}
		}
		t.row(row...)
	}
	t.flush()
	if more > 0 {
		fmt.Fprintf(w, "(%s more, with smaller counts: --top %d shows the biggest)\n", count(more, "row"), g.top)
	}
	g.renderHists(w)
}

// renderHists writes the histograms, in the order of the counts table.
func (g *aggregator) renderHists(w io.Writer) {
	rows, _ := g.shown()
	for _, r := range rows {
		if r.hist != nil {
			g.renderHist(w, r)
		}
	}
}

const barWidth = 40

// keyName names a row in a histogram's title: marker, by=value, ...
func (g *aggregator) keyName(r *aggRow) string {
	name := r.marker
	for i, f := range g.by {
		if r.values != nil {
			name += ", " + f + "=" + dash(r.values[i])
		}
	}
	return name
}

func (g *aggregator) renderHist(w io.Writer, r *aggRow) {
	h := r.hist
	field := cmp.Or(g.hist, g.lhistField())
	fmt.Fprintf(w, "\n@%s[%s]: count %d, avg %s, min %s, max %s\n", field, g.keyName(r), h.count, h.value(h.avg()), h.value(h.minV), h.value(h.maxV))
	counts := h.buckets[:]
	if h.lin != nil {
		counts = h.linear
	}
	first, last := -1, 0
	var peak uint64
	for b, n := range counts {
		if n > 0 {
			if first < 0 {
				first = b
			}
			last, peak = b, max(peak, n)
		}
	}
	t := newTable(w)
	for b := first; b <= last && first >= 0; b++ {
		n := counts[b]
		bar := strings.Repeat("@", int(n*barWidth/peak))
		lo, hi := h.bucketRange(b)
		t.row(fmt.Sprintf("[%s, %s)", lo, hi), fmt.Sprint(n), "|"+bar+strings.Repeat(" ", barWidth-len(bar))+"|")
	}
	t.flush()
}

// statsResult is the --json form of the final table.
type statsResult struct {
	Events uint64 `json:"events"`
	Lost   uint64 `json:"lost"`
	// By is the --by field when there is one, ByFields all of them.
	By         string       `json:"by,omitempty"`
	ByFields   []string     `json:"by_fields,omitempty"`
	Counts     []countRow   `json:"counts"`
	Hist       string       `json:"hist,omitempty"`
	Histograms []histResult `json:"histograms,omitempty"`
	// Value is the --value field; each row then has its statistics.
	Value string `json:"value,omitempty"`
	// More counts the rows left out by --top.
	More int `json:"more,omitempty"`
}

// countRow is a row: Value is the key with one --by field, Values with
// several. Durations are in nanoseconds.
type countRow struct {
	Marker string   `json:"marker"`
	Value  string   `json:"value,omitempty"`
	Values []string `json:"values,omitempty"`
	Count  uint64   `json:"count"`
	Sum    *float64 `json:"sum,omitempty"`
	Avg    *int64   `json:"avg,omitempty"`
	Min    *int64   `json:"min,omitempty"`
	Max    *int64   `json:"max,omitempty"`
}

type histResult struct {
	Marker  string        `json:"marker"`
	Value   string        `json:"value,omitempty"`
	Values  []string      `json:"values,omitempty"`
	Count   uint64        `json:"count"`
	Sum     float64       `json:"sum"`
	Min     int64         `json:"min"`
	Max     int64         `json:"max"`
	Buckets []bucketCount `json:"buckets"`
}

// bucketCount is one bucket: values in [Low, High), Low absent for the
// bucket of the lowest values; High is the largest int64 for the bucket of
// the highest values.
type bucketCount struct {
	Low   *int64 `json:"low,omitempty"`
	High  int64  `json:"high"`
	Count uint64 `json:"count"`
}

func (g *aggregator) result(lost uint64) statsResult {
	res := statsResult{Events: g.total, Lost: lost, Hist: cmp.Or(g.hist, g.lhistField()), Value: g.value, Counts: []countRow{}}
	if len(g.by) == 1 {
		res.By = g.by[0]
	}
	if len(g.by) > 1 {
		res.ByFields = g.by
	}
	rows, more := g.shown()
	res.More = more
	for _, r := range rows {
		cr := countRow{Marker: r.marker, Count: r.count}
		cr.Value, cr.Values = g.keyValues(r)
		if v := r.val; v != nil {
			avg := v.avg()
			cr.Sum, cr.Avg, cr.Min, cr.Max = &v.sum, &avg, &v.minV, &v.maxV
		}
		res.Counts = append(res.Counts, cr)
		if r.hist != nil {
			hr := r.hist.result()
			hr.Marker = r.marker
			hr.Value, hr.Values = cr.Value, cr.Values
			res.Histograms = append(res.Histograms, hr)
		}
	}
	return res
}

func (g *aggregator) keyValues(r *aggRow) (string, []string) {
	switch {
	case r.values == nil:
		return "", nil
	case len(g.by) == 1:
		return r.values[0], nil
	}
	return "", r.values
}

func (h *histogram) result() histResult {
	hr := histResult{Count: h.count, Sum: h.sum, Min: h.minV, Max: h.maxV}
	if l := h.lin; l != nil {
		for b, n := range h.linear {
			if n == 0 {
				continue
			}
			bc := bucketCount{Count: n}
			switch {
			case b == 0:
				bc.High = l.lo
			case b == len(h.linear)-1:
				bc.Low, bc.High = &l.hi, math.MaxInt64
			default:
				lo := l.lo + int64(b-1)*l.step
				bc.Low, bc.High = &lo, min(lo+l.step, l.hi)
			}
			hr.Buckets = append(hr.Buckets, bc)
		}
		return hr
	}
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
