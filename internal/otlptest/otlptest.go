// Package otlptest decodes the OTLP/HTTP protobuf requests that package
// export/otlp sends, and runs a test receiver, for the tests of the
// exporter and of the CLI. It decodes just what those tests check; the
// interop module (interop/otelcol) checks the same against the
// collector's own decoder.
package otlptest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// Field is one protobuf field.
type Field struct {
	Num  int
	Wire int
	V    uint64 // varint and fixed values
	Data []byte // length-delimited payloads
}

// ErrMalformed reports protobuf that does not parse.
var ErrMalformed = errors.New("otlptest: malformed protobuf")

// Fields splits a protobuf message into its fields.
func Fields(b []byte) ([]Field, error) {
	var out []Field
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, ErrMalformed
		}
		b = b[n:]
		f := Field{Num: int(tag >> 3), Wire: int(tag & 7)}
		switch f.Wire {
		case 0:
			f.V, n = binary.Uvarint(b)
			if n <= 0 {
				return nil, ErrMalformed
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return nil, ErrMalformed
			}
			f.V, b = binary.LittleEndian.Uint64(b), b[8:]
		case 5:
			if len(b) < 4 {
				return nil, ErrMalformed
			}
			f.V, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return nil, ErrMalformed
			}
			f.Data, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return nil, ErrMalformed
		}
		out = append(out, f)
	}
	return out, nil
}

func must(b []byte) []Field {
	fs, err := Fields(b)
	if err != nil {
		panic(err)
	}
	return fs
}

// AnyValue decodes an AnyValue: string, bool, int64, float64, []byte or
// []any.
func AnyValue(b []byte) any {
	for _, f := range must(b) {
		switch f.Num {
		case 1:
			return string(f.Data)
		case 2:
			return f.V != 0
		case 3:
			return int64(f.V)
		case 4:
			return math.Float64frombits(f.V)
		case 7:
			return append([]byte{}, f.Data...)
		case 5:
			arr := []any{}
			for _, v := range must(f.Data) {
				arr = append(arr, AnyValue(v.Data))
			}
			return arr
		}
	}
	return nil
}

// KeyValues decodes the KeyValues of field number num of a message.
func KeyValues(fs []Field, num int) map[string]any {
	m := map[string]any{}
	for _, f := range fs {
		if f.Num != num {
			continue
		}
		var k string
		var v any
		for _, kv := range must(f.Data) {
			switch kv.Num {
			case 1:
				k = string(kv.Data)
			case 2:
				v = AnyValue(kv.Data)
			}
		}
		m[k] = v
	}
	return m
}

// Record is a decoded LogRecord or Span, with its resource and scope.
type Record struct {
	Resource     map[string]any
	Scope        string
	ScopeVersion string
	Name         string // event name, or span name
	Time         uint64 // time, or span start
	End          uint64 // span end
	Observed     uint64
	Attrs        map[string]any
	TraceID      []byte
	SpanID       []byte
	ParentID     []byte
}

// Decode decodes an ExportLogsServiceRequest, or an
// ExportTraceServiceRequest if spans: they share the nesting.
func Decode(body []byte, spans bool) (recs []Record, err error) {
	defer func() {
		if p := recover(); p != nil {
			recs, err = nil, ErrMalformed
		}
	}()
	for _, rl := range must(body) {
		var res map[string]any
		for _, f := range must(rl.Data) {
			switch f.Num {
			case 1:
				res = KeyValues(must(f.Data), 1)
			case 2:
				var name, version string
				for _, g := range must(f.Data) {
					switch g.Num {
					case 1:
						for _, s := range must(g.Data) {
							switch s.Num {
							case 1:
								name = string(s.Data)
							case 2:
								version = string(s.Data)
							}
						}
					case 2:
						recs = append(recs, record(res, name, version, must(g.Data), spans))
					}
				}
			}
		}
	}
	return recs, nil
}

func record(res map[string]any, scope, version string, fs []Field, spans bool) Record {
	r := Record{Resource: res, Scope: scope, ScopeVersion: version}
	if spans {
		r.Attrs = KeyValues(fs, 9)
		for _, h := range fs {
			switch h.Num {
			case 1:
				r.TraceID = h.Data
			case 2:
				r.SpanID = h.Data
			case 4:
				r.ParentID = h.Data
			case 5:
				r.Name = string(h.Data)
			case 7:
				r.Time = h.V
			case 8:
				r.End = h.V
			}
		}
		return r
	}
	r.Attrs = KeyValues(fs, 6)
	for _, h := range fs {
		switch h.Num {
		case 1:
			r.Time = h.V
		case 11:
			r.Observed = h.V
		case 12:
			r.Name = string(h.Data)
		case 9:
			r.TraceID = h.Data
		case 10:
			r.SpanID = h.Data
		}
	}
	return r
}

// Receiver is a test collector: it records what it receives, and its
// answers can be scripted.
type Receiver struct {
	Server *httptest.Server

	mu      sync.Mutex
	logs    []Record
	spans   []Record
	metrics [][]byte
	gzipped int
	headers []http.Header
	answer  func(path string, n int) (status int, hdr map[string]string, body []byte)
}

// NewReceiver starts a receiver, closed at the end of the test.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Server.Close)
	return r
}

// URL is the receiver's base URL.
func (r *Receiver) URL() string { return r.Server.URL }

// Answer scripts the answers: f gets the path and the number of records
// of each request; a status of 0 means 200 OK and the request counts as
// received, as does any 2xx answer.
func (r *Receiver) Answer(f func(path string, n int) (status int, hdr map[string]string, body []byte)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	gz := req.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	var recs []Record
	switch req.URL.Path {
	case "/v1/logs":
		recs, err = Decode(body, false)
	case "/v1/traces":
		recs, err = Decode(body, true)
	case "/v1/metrics":
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	answer := r.answer
	r.mu.Unlock()
	if answer != nil {
		status, hdr, ab := answer(req.URL.Path, len(recs))
		if status != 0 {
			for k, v := range hdr {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			w.Write(ab)
			if status/100 != 2 {
				return
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if gz {
		r.gzipped++
	}
	r.headers = append(r.headers, req.Header.Clone())
	switch req.URL.Path {
	case "/v1/logs":
		r.logs = append(r.logs, recs...)
	case "/v1/traces":
		r.spans = append(r.spans, recs...)
	case "/v1/metrics":
		r.metrics = append(r.metrics, body)
	}
}

// Logs returns the log records received.
func (r *Receiver) Logs() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.logs...)
}

// Spans returns the spans received.
func (r *Receiver) Spans() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.spans...)
}

// Metrics returns the bodies of the metrics requests received.
func (r *Receiver) Metrics() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.metrics...)
}

// Gzipped counts the requests received compressed.
func (r *Receiver) Gzipped() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gzipped
}

// Headers returns the headers of the requests received.
func (r *Receiver) Headers() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

// SumValue returns the value of the data point of Sum metric name whose
// attribute key has value val in a metrics request body, or -1.
func SumValue(body []byte, name, key, val string) int64 {
	for _, p := range SumPoints(body, name) {
		if p.Attributes[key] == val {
			return p.Value
		}
	}
	return -1
}

// SumPoint is one data point of a Sum metric.
type SumPoint struct {
	Attributes map[string]any
	Value      int64
}

// SumPoints returns the data points of Sum metric name in a metrics
// request body.
func SumPoints(body []byte, name string) []SumPoint {
	var out []SumPoint
	for _, rm := range must(body) {
		for _, sm := range must(rm.Data) {
			if sm.Num != 2 {
				continue
			}
			for _, m := range must(sm.Data) {
				if m.Num != 2 {
					continue
				}
				mfs := must(m.Data)
				if len(mfs) == 0 || string(mfs[0].Data) != name {
					continue
				}
				for _, mf := range mfs {
					if mf.Num != 7 {
						continue
					}
					for _, dp := range must(mf.Data) {
						if dp.Num != 1 {
							continue
						}
						fs := must(dp.Data)
						p := SumPoint{Attributes: KeyValues(fs, 7)}
						for _, f := range fs {
							if f.Num == 6 {
								p.Value = int64(f.V)
							}
						}
						out = append(out, p)
					}
				}
			}
		}
	}
	return out
}

// MetricsResource returns the resource attributes of the first
// ResourceMetrics of a metrics request body.
func MetricsResource(body []byte) map[string]any {
	for _, rm := range must(body) {
		for _, f := range must(rm.Data) {
			if f.Num == 1 {
				return KeyValues(must(f.Data), 1)
			}
		}
	}
	return nil
}

// SumMonotonic reports whether Sum metric name of a metrics request body
// is monotonic and cumulative; found is false if the body has no such
// Sum.
func SumMonotonic(body []byte, name string) (monotonic, found bool) {
	for _, rm := range must(body) {
		for _, sm := range must(rm.Data) {
			if sm.Num != 2 {
				continue
			}
			for _, m := range must(sm.Data) {
				if m.Num != 2 {
					continue
				}
				mfs := must(m.Data)
				if len(mfs) == 0 || string(mfs[0].Data) != name {
					continue
				}
				for _, mf := range mfs {
					if mf.Num != 7 { // sum
						continue
					}
					var mono, cumulative bool
					for _, f := range must(mf.Data) {
						switch f.Num {
						case 2: // aggregation_temporality
							cumulative = f.V == 2
						case 3: // is_monotonic
							mono = f.V == 1
						}
					}
					return mono && cumulative, true
				}
			}
		}
	}
	return false, false
}

// CountRecords returns the number of log records (or spans) of an
// ExportLogsServiceRequest (or ExportTraceServiceRequest): the items of
// field 2 of each scope's message, decoding nothing else.
func CountRecords(body []byte) (int, error) {
	n := 0
	// resource_logs (1) > scope_logs (2) > log_records (2); the same
	// numbers for spans.
	err := eachBytesField(body, 1, func(rl []byte) error {
		return eachBytesField(rl, 2, func(sl []byte) error {
			return eachBytesField(sl, 2, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

// eachBytesField calls f with the payload of every length-delimited field
// number num of message b.
func eachBytesField(b []byte, num int, f func([]byte) error) error {
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return ErrMalformed
		}
		b = b[n:]
		switch tag & 7 {
		case 0:
			if _, n = binary.Uvarint(b); n <= 0 {
				return ErrMalformed
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return ErrMalformed
			}
			b = b[8:]
		case 5:
			if len(b) < 4 {
				return ErrMalformed
			}
			b = b[4:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return ErrMalformed
			}
			data := b[n : n+int(l)]
			b = b[n+int(l):]
			if int(tag>>3) == num {
				if err := f(data); err != nil {
					return err
				}
			}
		default:
			return ErrMalformed
		}
	}
	return nil
}

// Counter is a fast OTLP/HTTP receiver for load tests and benchmarks: it
// counts the log records and spans of the requests it accepts (gzip or
// not), decoding no more than it takes to count them, and answers 400 to
// a request that does not parse. Use it as an http.Handler.
type Counter struct {
	// Logs and Spans count the items received, Requests the requests,
	// Bytes their bodies as sent, Malformed the requests refused.
	Logs, Spans, Requests, Bytes, Malformed atomic.Uint64

	bufs sync.Pool // of *counterBuf
}

type counterBuf struct {
	raw, plain bytes.Buffer
	zr         *gzip.Reader
}

func (c *Counter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	cb, _ := c.bufs.Get().(*counterBuf)
	if cb == nil {
		cb = &counterBuf{}
	}
	defer c.bufs.Put(cb)
	cb.raw.Reset()
	if _, err := cb.raw.ReadFrom(req.Body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.Requests.Add(1)
	c.Bytes.Add(uint64(cb.raw.Len()))
	body := cb.raw.Bytes()
	if req.Header.Get("Content-Encoding") == "gzip" {
		var err error
		if cb.zr == nil {
			cb.zr, err = gzip.NewReader(&cb.raw)
		} else {
			err = cb.zr.Reset(&cb.raw)
		}
		cb.plain.Reset()
		if err == nil {
			_, err = cb.plain.ReadFrom(cb.zr)
		}
		if err != nil {
			c.Malformed.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body = cb.plain.Bytes()
	}
	switch req.URL.Path {
	case "/v1/logs", "/v1/traces":
		n, err := CountRecords(body)
		if err != nil {
			c.Malformed.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if req.URL.Path == "/v1/logs" {
			c.Logs.Add(uint64(n))
		} else {
			c.Spans.Add(uint64(n))
		}
	case "/v1/metrics":
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}
