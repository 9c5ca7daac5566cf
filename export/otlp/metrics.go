package otlp

import (
	"bytes"
	"context"
	"errors"
	"github.com/klauspost/compress/gzip"
	"math"
	"time"
)

// Metric is one OTLP metric for ExportMetrics: exactly one of Sum,
// Histogram and ExpHistogram is set.
type Metric struct {
	Name, Description, Unit string
	Scope                   Scope
	Sum                     *Sum
	Histogram               *Histogram
	ExpHistogram            *ExpHistogram
}

// Sum is a cumulative sum, such as a count of events.
type Sum struct {
	Monotonic bool
	Points    []NumberPoint
}

// NumberPoint is one data point of a Sum: an integer value.
type NumberPoint struct {
	Attributes      []Attribute
	StartNS, TimeNS int64
	Value           int64
}

// Histogram is a cumulative histogram with explicit bucket bounds.
type Histogram struct {
	Points []HistogramPoint
}

// HistogramPoint is one data point of a Histogram. Counts has one more
// element than Bounds: bucket i counts values in (Bounds[i-1], Bounds[i]].
type HistogramPoint struct {
	Attributes      []Attribute
	StartNS, TimeNS int64
	Count           uint64
	Sum, Min, Max   float64
	Bounds          []float64
	Counts          []uint64
}

// ExpHistogram is a cumulative exponential histogram.
type ExpHistogram struct {
	Points []ExpHistogramPoint
}

// ExpHistogramPoint is one data point of an ExpHistogram: bucket
// Offset+i of Positive (or Negative) counts values in
// (base^(Offset+i), base^(Offset+i+1)] with base = 2^(2^-Scale).
type ExpHistogramPoint struct {
	Attributes      []Attribute
	StartNS, TimeNS int64
	Count           uint64
	Sum, Min, Max   float64
	Scale           int32
	ZeroCount       uint64
	PositiveOffset  int32
	Positive        []uint64
	NegativeOffset  int32
	Negative        []uint64
}

const temporalityCumulative = 2

func appendAttrs(b []byte, field int, attrs []Attribute) []byte {
	var scratch []byte
	for _, a := range attrs {
		scratch = a.appendValue(scratch[:0])
		b = appendKeyValue(b, field, a.Key, scratch)
	}
	return b
}

func appendDouble(b []byte, field int, v float64) []byte {
	return appendFixed64(b, field, math.Float64bits(v))
}

func appendPackedFixed64(b []byte, field int, vs []uint64) []byte {
	if len(vs) == 0 {
		return b
	}
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(8*len(vs)))
	for _, v := range vs {
		b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
	}
	return b
}

func appendPackedUvarint(b []byte, field int, vs []uint64) []byte {
	if len(vs) == 0 {
		return b
	}
	n := 0
	for _, v := range vs {
		n += varintLen(v)
	}
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(n))
	for _, v := range vs {
		b = appendVarint(b, v)
	}
	return b
}

func zigzag(v int32) uint64 { return uint64(uint32(v<<1) ^ uint32(v>>31)) }

// appendMetric appends the content of a Metric message.
func appendMetric(b []byte, m *Metric) []byte {
	b = appendBytesField(b, 1, m.Name)
	if m.Description != "" {
		b = appendBytesField(b, 2, m.Description)
	}
	if m.Unit != "" {
		b = appendBytesField(b, 3, m.Unit)
	}
	var data []byte
	switch {
	case m.Sum != nil:
		for _, p := range m.Sum.Points {
			var dp []byte
			dp = appendFixed64(dp, 2, uint64(p.StartNS))
			dp = appendFixed64(dp, 3, uint64(p.TimeNS))
			dp = appendFixed64(dp, 6, uint64(p.Value)) // as_int, sfixed64
			dp = appendAttrs(dp, 7, p.Attributes)
			data = appendBytesField(data, 1, dp)
		}
		data = appendUintField(data, 2, temporalityCumulative)
		if m.Sum.Monotonic {
			data = appendUintField(data, 3, 1)
		}
		return appendBytesField(b, 7, data)
	case m.Histogram != nil:
		for _, p := range m.Histogram.Points {
			var dp []byte
			dp = appendFixed64(dp, 2, uint64(p.StartNS))
			dp = appendFixed64(dp, 3, uint64(p.TimeNS))
			dp = appendFixed64(dp, 4, p.Count)
			dp = appendDouble(dp, 5, p.Sum)
			dp = appendPackedFixed64(dp, 6, p.Counts)
			bounds := make([]uint64, len(p.Bounds))
			for i, f := range p.Bounds {
				bounds[i] = math.Float64bits(f)
			}
			dp = appendPackedFixed64(dp, 7, bounds)
			dp = appendAttrs(dp, 9, p.Attributes)
			if p.Count > 0 {
				dp = appendDouble(dp, 11, p.Min)
				dp = appendDouble(dp, 12, p.Max)
			}
			data = appendBytesField(data, 1, dp)
		}
		data = appendUintField(data, 2, temporalityCumulative)
		return appendBytesField(b, 9, data)
	case m.ExpHistogram != nil:
		for _, p := range m.ExpHistogram.Points {
			var dp []byte
			dp = appendAttrs(dp, 1, p.Attributes)
			dp = appendFixed64(dp, 2, uint64(p.StartNS))
			dp = appendFixed64(dp, 3, uint64(p.TimeNS))
			dp = appendFixed64(dp, 4, p.Count)
			dp = appendDouble(dp, 5, p.Sum)
			dp = appendUintField(dp, 6, zigzag(p.Scale))
			dp = appendFixed64(dp, 7, p.ZeroCount)
			if len(p.Positive) > 0 {
				var buckets []byte
				buckets = appendUintField(buckets, 1, zigzag(p.PositiveOffset))
				buckets = appendPackedUvarint(buckets, 2, p.Positive)
				dp = appendBytesField(dp, 8, buckets)
			}
			if len(p.Negative) > 0 {
				var buckets []byte
				buckets = appendUintField(buckets, 1, zigzag(p.NegativeOffset))
				buckets = appendPackedUvarint(buckets, 2, p.Negative)
				dp = appendBytesField(dp, 9, buckets)
			}
			if p.Count > 0 {
				dp = appendDouble(dp, 12, p.Min)
				dp = appendDouble(dp, 13, p.Max)
			}
			data = appendBytesField(data, 1, dp)
		}
		data = appendUintField(data, 2, temporalityCumulative)
		return appendBytesField(b, 10, data)
	}
	return b
}

// encodeMetrics builds an ExportMetricsServiceRequest: one
// ResourceMetrics, one ScopeMetrics per scope in order of appearance.
func encodeMetrics(resource []byte, ms []Metric) []byte {
	var scopes []Scope
	per := map[Scope][]byte{}
	for i := range ms {
		s := ms[i].Scope
		if _, ok := per[s]; !ok {
			scopes = append(scopes, s)
		}
		per[s] = appendBytesField(per[s], 2, appendMetric(nil, &ms[i]))
	}
	var rm []byte
	rm = appendBytesField(rm, 1, resource)
	for _, s := range scopes {
		var sm []byte
		sm = appendBytesField(sm, 1, encodeScope(s))
		sm = append(sm, per[s]...)
		rm = appendBytesField(rm, 2, sm)
	}
	return appendBytesField(nil, 1, rm)
}

// ExportMetrics sends metrics now, with the exporter's resource, and
// retries like event batches do until ctx ends. It returns an error
// wrapping ErrRejected if the collector refuses them, or the last error
// when ctx ended first. It may be called while events are exported.
func (e *Exporter) ExportMetrics(ctx context.Context, ms []Metric) error {
	body, gz := e.metricsBody(ms)
	backoff := e.cfg.RetryInitial
	for {
		actx, cancel := context.WithTimeout(ctx, e.cfg.Signal[sigMetrics].Timeout)
		wait, err := e.attemptCtx(actx, sigMetrics, [][]byte{body}, gz)
		cancel()
		var rej *rejection
		if err == nil {
			return nil
		}
		if errors.As(err, &rej) {
			return &HTTPError{URL: e.cfg.MetricsURL, StatusCode: 200, Message: rej.Error()}
		}
		if errors.Is(err, ErrRejected) || ctx.Err() != nil {
			return err
		}
		if wait <= 0 {
			wait = jittered(backoff)
			backoff = min(2*backoff, e.cfg.RetryMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// Names of the exporter's own metrics.
const (
	// MetricDropped is the cumulative count of events the exporter lost,
	// with attribute "reason": "queue_full" or "rejected".
	MetricDropped = "tracemark.exporter.dropped"
)

// reportDrops sends the count of lost events as a metric when it grew
// since the last report: after a successful export, so the collector is
// back. One attempt: the count is cumulative, the next report covers a
// failed one. The senders report one at a time: a smaller cumulative
// count must not arrive after a bigger one.
func (e *Exporter) reportDrops() {
	if e.dropped.Load()+e.rejected.Load() == 0 {
		return
	}
	e.reportMu.Lock()
	defer e.reportMu.Unlock()
	dropped, rejected := e.dropped.Load(), e.rejected.Load()
	if dropped+rejected == e.reportedDrops {
		return
	}
	now := time.Now().UnixNano()
	m := Metric{
		Name: MetricDropped, Unit: "{event}", Scope: Scope{Name: "tracemark/export/otlp"},
		Description: "Events the tracemark OTLP exporter lost: the queue was full, or the collector rejected them.",
		Sum: &Sum{Monotonic: true, Points: []NumberPoint{
			{Attributes: []Attribute{{"reason", "queue_full"}}, StartNS: e.start.UnixNano(), TimeNS: now, Value: int64(dropped)},
			{Attributes: []Attribute{{"reason", "rejected"}}, StartNS: e.start.UnixNano(), TimeNS: now, Value: int64(rejected)},
		}},
	}
	ctx, cancel := context.WithTimeout(e.sendCtx, e.cfg.Signal[sigMetrics].Timeout)
	defer cancel()
	body, gz := e.metricsBody([]Metric{m})
	if _, err := e.attemptCtx(ctx, sigMetrics, [][]byte{body}, gz); err == nil {
		e.reportedDrops = dropped + rejected
	}
}

// metricsBody encodes a metrics request, compressed as the exporter's
// requests are, and says whether it is. Metrics requests are few and
// small: each gets a writer of its own.
func (e *Exporter) metricsBody(ms []Metric) ([]byte, bool) {
	body := encodeMetrics(e.resource, ms)
	if e.cfg.Signal[sigMetrics].Compression != CompressionGzip {
		return body, false
	}
	var zbuf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zbuf, gzip.BestSpeed)
	zw.Write(body)
	zw.Close()
	return zbuf.Bytes(), true
}
