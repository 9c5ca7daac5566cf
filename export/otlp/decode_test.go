package otlp

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// A small OTLP decoder for the tests: enough of ExportLogsServiceRequest,
// ExportTraceServiceRequest and ExportMetricsServiceRequest to check
// what the exporter sends. The interop module checks the same against
// the collector's own decoder.

type fieldVal struct {
	num  int
	wt   int
	v    uint64
	data []byte
}

func fields(t testing.TB, b []byte) []fieldVal {
	t.Helper()
	var out []fieldVal
	for len(b) > 0 {
		num, wt, v, data, rest, ok := readField(b)
		if !ok {
			t.Fatalf("malformed protobuf at %x", b)
		}
		out = append(out, fieldVal{num, wt, v, data})
		b = rest
	}
	return out
}

// anyValue decodes an AnyValue into a Go value: string, bool, int64,
// float64, []byte or []any.
func anyValue(t testing.TB, b []byte) any {
	for _, f := range fields(t, b) {
		switch f.num {
		case anyString:
			return string(f.data)
		case anyBool:
			return f.v != 0
		case anyInt:
			return int64(f.v)
		case anyDouble:
			return math.Float64frombits(f.v)
		case anyBytes:
			return append([]byte{}, f.data...)
		case anyArray:
			var arr []any
			for _, v := range fields(t, f.data) {
				arr = append(arr, anyValue(t, v.data))
			}
			return arr
		}
	}
	return nil
}

func keyValues(t testing.TB, fs []fieldVal, field int) map[string]any {
	m := map[string]any{}
	for _, f := range fs {
		if f.num != field {
			continue
		}
		var k string
		var v any
		for _, kv := range fields(t, f.data) {
			switch kv.num {
			case 1:
				k = string(kv.data)
			case 2:
				v = anyValue(t, kv.data)
			}
		}
		m[k] = v
	}
	return m
}

type gotRecord struct {
	resource map[string]any
	scope    Scope
	name     string // event name or span name
	time     uint64 // time or span start
	end      uint64 // span end
	observed uint64
	attrs    map[string]any
	traceID  []byte
	spanID   []byte
	parentID []byte
}

// decodeRequest decodes logs or spans (they share the nesting).
func decodeRequest(t testing.TB, body []byte, spans bool) []gotRecord {
	var out []gotRecord
	for _, rl := range fields(t, body) {
		var res map[string]any
		for _, f := range fields(t, rl.data) {
			switch f.num {
			case 1:
				res = keyValues(t, fields(t, f.data), 1)
			case 2:
				var sc Scope
				for _, g := range fields(t, f.data) {
					switch g.num {
					case 1:
						for _, s := range fields(t, g.data) {
							switch s.num {
							case 1:
								sc.Name = string(s.data)
							case 2:
								sc.Version = string(s.data)
							}
						}
					case 2:
						r := gotRecord{resource: res, scope: sc}
						fs := fields(t, g.data)
						if spans {
							r.attrs = keyValues(t, fs, spanAttributes)
						} else {
							r.attrs = keyValues(t, fs, logAttributes)
						}
						for _, h := range fs {
							if spans {
								switch h.num {
								case spanTraceID:
									r.traceID = h.data
								case spanSpanID:
									r.spanID = h.data
								case spanParentID:
									r.parentID = h.data
								case spanName:
									r.name = string(h.data)
								case spanStart:
									r.time = h.v
								case spanEnd:
									r.end = h.v
								}
								continue
							}
							switch h.num {
							case logTime:
								r.time = h.v
							case logObserved:
								r.observed = h.v
							case logEventName:
								r.name = string(h.data)
							case logTraceID:
								r.traceID = h.data
							case logSpanID:
								r.spanID = h.data
							}
						}
						out = append(out, r)
					}
				}
			}
		}
	}
	return out
}

// receiver is a test collector: it records what it receives, and its
// answer can be scripted.
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	mu      sync.Mutex
	logs    []gotRecord
	spans   []gotRecord
	metrics [][]byte
	gzipped int
	paths   []string
	headers []http.Header
	// answer, if set, decides the answer; returning 0 means 200 OK.
	answer func(path string, n int) (status int, hdr map[string]string, body []byte)
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	gz := req.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body, err = io.ReadAll(zr)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	var recs []gotRecord
	switch req.URL.Path {
	case "/v1/logs":
		recs = decodeRequest(r.t, body, false)
	case "/v1/traces":
		recs = decodeRequest(r.t, body, true)
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
	r.paths = append(r.paths, req.URL.Path)
	r.headers = append(r.headers, req.Header.Clone())
	switch req.URL.Path {
	case "/v1/logs":
		r.logs = append(r.logs, recs...)
	case "/v1/traces":
		r.spans = append(r.spans, recs...)
	case "/v1/metrics":
		r.metrics = append(r.metrics, body)
	default:
		panic(fmt.Sprintf("unexpected path %q", req.URL.Path))
	}
}

func (r *receiver) received() ([]gotRecord, []gotRecord, [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gotRecord(nil), r.logs...), append([]gotRecord(nil), r.spans...), append([][]byte(nil), r.metrics...)
}
