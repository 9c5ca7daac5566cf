package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
)

// Names of the metrics that `tracemark stats --otlp` exports.
const (
	// metricEvents counts events per marker (and per --by value).
	metricEvents = "tracemark.events"
	// metricLost counts the events the recording lost (full buffers).
	metricLost = "tracemark.events.lost"
	// metricHistPrefix starts the name of a --hist histogram; the field
	// name follows.
	metricHistPrefix = "tracemark.hist."
)

var statsScope = otlp.Scope{Name: "tracemark/stats"}

// metrics returns the aggregation as OTLP metrics, cumulative since
// start: a sum per key, and with --hist an explicit-bucket histogram per
// key whose buckets are exactly the log2 buckets of the table.
func (g *aggregator) metrics(start, now time.Time, lost uint64) []otlp.Metric {
	s, n := start.UnixNano(), now.UnixNano()
	attrs := func(r *aggRow) []otlp.Attribute {
		a := []otlp.Attribute{{Key: "marker", Value: r.marker}}
		for i, v := range r.attrs {
			a = append(a, otlp.Attribute{Key: g.by[i], Value: v})
		}
		return a
	}
	sum := &otlp.Sum{Monotonic: true}
	var hist *otlp.Histogram
	unit := ""
	for _, k := range g.keys() {
		sum.Points = append(sum.Points, otlp.NumberPoint{Attributes: attrs(k), StartNS: s, TimeNS: n, Value: int64(k.count)})
		h := k.hist
		if h == nil || h.lin != nil || h.count == 0 {
			continue // linear histograms (--lhist) are not exported yet
		}
		if hist == nil {
			hist = &otlp.Histogram{}
		}
		if h.duration {
			unit = "ns"
		}
		hist.Points = append(hist.Points, h.otlpPoint(attrs(k), s, n))
	}
	ms := []otlp.Metric{
		{Name: metricEvents, Unit: "{event}", Scope: statsScope, Description: "Events recorded, per marker", Sum: sum},
		{Name: metricLost, Unit: "{event}", Scope: statsScope, Description: "Events the recording lost (full buffers)",
			Sum: &otlp.Sum{Monotonic: true, Points: []otlp.NumberPoint{{StartNS: s, TimeNS: n, Value: int64(lost)}}}},
	}
	if hist != nil {
		ms = append(ms, otlp.Metric{Name: metricHistPrefix + g.hist, Unit: unit, Scope: statsScope,
			Description: "log2 histogram of field " + g.hist, Histogram: hist})
	}
	return ms
}

// otlpKeyValue is the attribute value of a --by field: of the type its
// events' log records give it (package otlp's mapping: integers, bools,
// floats, strings, bytes), so that a back end matches the counts of
// status=200 with the events of status 200. The bytes are copied: the
// record's are reused.
func otlpKeyValue(kind string, v ctf.Value) any {
	if kind == "bool" && v.Kind == ctf.Uint {
		return v.Uint != 0
	}
	v.Bytes = bytes.Clone(v.Bytes)
	return v
}

// otlpPoint converts the log2 buckets. Values are integers, so bucket
// [2^k, 2^(k+1)) is OTLP's (2^k-1, 2^(k+1)-1]: the bounds are -1 (the
// negative values), 0, then 2^(k+1)-1. Buckets above the highest used
// one are left out: the last bucket is open-ended.
func (h *histogram) otlpPoint(attrs []otlp.Attribute, start, now int64) otlp.HistogramPoint {
	last := 0
	for b, c := range h.buckets {
		if c > 0 {
			last = b
		}
	}
	p := otlp.HistogramPoint{Attributes: attrs, StartNS: start, TimeNS: now, Count: h.count, Sum: h.sum,
		Min: float64(h.minV), Max: float64(h.maxV), Counts: append([]uint64(nil), h.buckets[:last+1]...)}
	for b := range last {
		switch b {
		case 0:
			p.Bounds = append(p.Bounds, -1)
		default:
			// Bucket b holds [2^(b-2), 2^(b-1)) for b >= 2, zero for b == 1.
			p.Bounds = append(p.Bounds, float64(uint64(1)<<(b-1)-1))
		}
	}
	return p
}

// otlpMetrics exports cumulative counts periodically: a stats
// aggregation (stats --otlp), or a recording's counts (otlpOut.track).
type otlpMetrics struct {
	o       *otlpOut
	mu      sync.Mutex
	busy    bool
	stopped bool
	cancel  context.CancelFunc // of the export under way
	running sync.WaitGroup
	// warned keys the refusal of the counts last shown (newRefusal);
	// pending is the warning of the last export, for the next update to
	// show on its caller's goroutine (o.warn draws over the progress
	// line). Guarded by mu.
	warned, pending string
}

// update exports the current counts in the background, unless the
// previous export is still under way (the sums are cumulative, the next
// one catches up) or stop was called. It first shows, through o.warn, a
// refusal of the previous export.
func (m *otlpMetrics) update(ms []otlp.Metric) {
	if m == nil {
		return
	}
	m.mu.Lock()
	line := m.pending
	m.pending = ""
	m.mu.Unlock()
	if line != "" && m.o.warn != nil {
		m.o.warn(line) // not under mu: stop's bound holds while it writes
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.busy || m.stopped {
		return
	}
	m.busy = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	m.cancel = cancel
	m.running.Add(1)
	go func() {
		defer m.running.Done()
		defer cancel()
		err := m.o.exp.ExportMetrics(ctx, ms) // the final export fails on errors
		m.mu.Lock()
		defer m.mu.Unlock()
		m.busy = false
		if line := m.noticeRefusal(err); line != "" {
			m.pending = line
		}
	}()
}

// noticeRefusal returns a warning the first time the collector refuses
// the counts for good, and again when it refuses them for another
// reason, or "": a wrong URL or missing credentials show while stats
// runs, not only when it exits. Call with mu held.
func (m *otlpMetrics) noticeRefusal(err error) string {
	if !errors.Is(err, otlp.ErrRejected) || !newRefusal(&m.warned, err) {
		return "" // retried until the context ended, or already shown
	}
	return fmt.Sprintf("%swarning: OTLP: the collector refuses the counts, which are not retried: %v; check the URL and OTEL_EXPORTER_OTLP_HEADERS", m.o.prefix, err)
}

// stop ends the background exports before the final one, so that the
// final counts are the last to reach the collector (an earlier, smaller
// sum arriving after them would make a cumulative count go back): no
// export starts after it, and the one under way is given up to wait to
// finish, then cancelled and waited for.
func (m *otlpMetrics) stop(wait time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.stopped = true
	cancel := m.cancel
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		cancel()
		<-done
	}
}

// finish exports the final counts, waiting at most wait, and says so on
// w. A refusal by the collector is an error.
func (m *otlpMetrics) finish(w io.Writer, ms []otlp.Metric, wait time.Duration) error {
	if m == nil {
		return nil
	}
	m.stop(wait / 2)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := m.o.exp.ExportMetrics(ctx, ms)
	m.o.exp.Close(ctx)
	if err != nil {
		return fmt.Errorf("otlp export of the counts to %s: %w", m.o.url, err)
	}
	fmt.Fprintf(w, "%sOTLP: counts exported to %s as %s\n", m.o.prefix, m.o.url, metricEvents)
	return nil
}
