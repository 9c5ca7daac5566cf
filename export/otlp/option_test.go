package otlp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/otlptest"
)

// TestInvalidOption checks that New refuses an option given a value out
// of its range with an error wrapping ErrConfig and naming the option.
func TestInvalidOption(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"WithCompression", WithCompression("zstd")},
		{"WithTimeout", WithTimeout(-time.Second)},
		{"WithBatch", WithBatch(-1, 0, 0)},
		{"WithQueueSize", WithQueueSize(-1)},
		{"WithRetry", WithRetry(0, -time.Second)},
		{"WithSenders", WithSenders(-1)},
		{"WithHeaders", WithHeaders(map[string]string{"": "x"})},
		{"WithSignalURLs", WithSignalURLs("collector:4318", "", "")},
	} {
		e, err := New("", tc.opt)
		if err == nil {
			e.Close(context.Background())
			t.Errorf("%s: New succeeded, want an error", tc.name)
			continue
		}
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: error %q does not wrap ErrConfig and name the option", tc.name, err)
		}
	}
}

// TestEnvEndpoints checks WithEnv's rule: the environment's endpoints are
// used when New's endpoint is empty, and an endpoint given to New wins
// over all of them; options after WithEnv override it, headers key by
// key.
func TestEnvEndpoints(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318")
	t.Setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:4318/v1/logs")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "tenant=acme,authorization=old")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")

	e, err := New("", WithEnv())
	if err != nil {
		t.Fatal(err)
	}
	e.Close(context.Background())
	for _, sc := range e.cfg.Signal {
		if sc.Timeout != 2*time.Second || sc.Compression != CompressionGzip || sc.Headers["tenant"] != "acme" {
			t.Errorf("from the environment: %+v", sc)
		}
	}
	if c := e.cfg; c.LogsURL != "http://logs:4318/v1/logs" || c.TracesURL != "http://env:4318/v1/traces" {
		t.Errorf("from the environment: %+v", c)
	}

	e, err = New("https://c:4318", WithEnv(), WithHeaders(map[string]string{"authorization": "new"}), WithCompression(CompressionNone))
	if err != nil {
		t.Fatal(err)
	}
	e.Close(context.Background())
	if c := e.cfg; c.LogsURL != "https://c:4318/v1/logs" || c.MetricsURL != "https://c:4318/v1/metrics" {
		t.Errorf("explicit endpoint after WithEnv: %+v", c)
	}
	for _, sc := range e.cfg.Signal {
		if sc.Headers["tenant"] != "acme" || sc.Headers["authorization"] != "new" || sc.Compression != CompressionNone || sc.Timeout != 2*time.Second {
			t.Errorf("options after WithEnv: %+v", sc)
		}
	}

	// A per-signal variable set, an option after WithEnv still wins.
	t.Setenv("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "gzip")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "300")
	e, err = New("", WithEnv(), WithCompression(CompressionNone), WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	e.Close(context.Background())
	for _, sc := range e.cfg.Signal {
		if sc.Compression != CompressionNone || sc.Timeout != time.Second {
			t.Errorf("options after per-signal variables: %+v", sc)
		}
	}

	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "tenant=acme,x")
	if _, err := New("", WithEnv()); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "WithEnv: ") || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_HEADERS") {
		t.Errorf("bad variable: %v", err)
	}
}

// A setting of the environment that the specification says to ignore
// with a warning (an unknown enumerated value, a timeout that is no
// count of milliseconds) is ignored, and Warnings names it.
func TestEnvWarnings(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd")
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "GZip")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "HTTP/Protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "carrier-pigeon")
	e, err := New("http://c:4318", WithEnv())
	if err != nil {
		t.Fatal(err)
	}
	e.Close(context.Background())
	for s, sc := range e.cfg.Signal {
		if sc.Timeout != DefaultTimeout || sc.Compression != CompressionGzip {
			t.Errorf("signal %d: %+v, want the default timeout and gzip", s, sc)
		}
	}
	w := strings.Join(e.Warnings(), "\n")
	for _, want := range []string{`OTEL_EXPORTER_OTLP_TIMEOUT="soon"`, `OTEL_EXPORTER_OTLP_METRICS_COMPRESSION="zstd"`, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="carrier-pigeon"`} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings %q do not name %s", w, want)
		}
	}
	if n := len(e.Warnings()); n != 3 {
		t.Errorf("%d warnings, want 3: %q", n, w)
	}
}

// The exporter's own client writes requests in big pieces, not the 4 KB
// of http.Transport's default buffer, and keeps a connection per sender.
func TestDefaultClientWritesBigPieces(t *testing.T) {
	e, err := New("http://localhost:4318", WithSenders(3))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	tr, ok := e.cfg.Client.Transport.(*http.Transport)
	if !ok || tr.WriteBufferSize != writeBuffer || tr.MaxIdleConnsPerHost != 3 {
		t.Errorf("transport %T %+v: want a write buffer of %d, 3 idle connections per host", e.cfg.Client.Transport, tr, writeBuffer)
	}
	if tr == http.DefaultTransport {
		t.Error("the exporter changed http.DefaultTransport")
	}
}

// The default client's TCP connections write a request body with one
// writev from the batch's pieces: bodyConn takes the body from behind
// net/http's io.LimitedReader. A body behind a limit shorter than it
// (not one of net/http's requests) goes the ordinary way, cut at the
// limit. And a request as big as a batch gets every record through.
func TestDefaultClientWritesBodiesWithWritev(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		got <- b
	}()
	tr := defaultClient(1).Transport.(*http.Transport)
	c, err := tr.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	bc, ok := c.(*bodyConn)
	if !ok {
		t.Fatalf("the default client dials a %T, want a *bodyConn", c)
	}
	body := &requestBody{bufs: net.Buffers{[]byte("head"), bytes.Repeat([]byte("r"), 100_000), []byte("tail")}}
	lr := &io.LimitedReader{R: body, N: 100_008}
	if n, err := bc.ReadFrom(lr); n != 100_008 || err != nil || lr.N != 0 || len(body.bufs) != 0 {
		t.Fatalf("ReadFrom wrote %d (%v), %d left to the limit, %d pieces left", n, err, lr.N, len(body.bufs))
	}
	short := &requestBody{bufs: net.Buffers{[]byte("0123456789")}}
	if n, err := bc.ReadFrom(&io.LimitedReader{R: short, N: 4}); n != 4 || err != nil {
		t.Fatalf("ReadFrom of a body longer than its limit wrote %d (%v), want 4", n, err)
	}
	c.Close()
	want := "head" + strings.Repeat("r", 100_000) + "tail" + "0123"
	if b := <-got; string(b) != want {
		t.Fatalf("the peer read %d bytes, want %d", len(b), len(want))
	}

	r := otlptest.NewReceiver(t)
	e, err := New(r.URL(), WithBatch(50_000, 0, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c1 := Class{Name: "m:x", Fields: []Field{{"s", "string"}, {"i", "int64"}}}
	for i := range 50_000 {
		e.Log(&c1, int64(i), []ctf.Value{ctf.StringValue(strings.Repeat("x", i%50)), ctf.IntValue(int64(i))}, 0)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs := r.Logs()
	if len(logs) != 50_000 {
		t.Fatalf("received %d records, want 50000", len(logs))
	}
	for i, l := range logs {
		if l.Time != uint64(i) || l.Attrs["i"] != int64(i) || l.Attrs["s"] != strings.Repeat("x", i%50) {
			t.Fatalf("record %d: %+v", i, l)
		}
	}
	if st := e.Stats(); st.Requests != 1 || st.Bytes < 2*writeBuffer {
		t.Fatalf("%d requests of %d bytes in all, want one bigger than the write buffer", st.Requests, st.Bytes)
	}
}

// Uncompressed, eight batches go out at once by default, whatever
// GOMAXPROCS: a sender mostly waits for the answer. With gzip the default
// stays a quarter of GOMAXPROCS (at least 1), compression taking CPU.
func TestDefaultSendersByCompression(t *testing.T) {
	for _, tc := range []struct {
		comp string
		want int
	}{{CompressionNone, 8}, {CompressionGzip, min(max(runtime.GOMAXPROCS(0)/4, 1), 4)}} {
		e, err := New("http://localhost:4318", WithCompression(tc.comp))
		if err != nil {
			t.Fatal(err)
		}
		if e.cfg.Senders != tc.want {
			t.Errorf("compression %q: %d senders, want %d", tc.comp, e.cfg.Senders, tc.want)
		}
		e.Close(context.Background())
	}
	e, err := New("http://localhost:4318", WithSenders(1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if e.cfg.Senders != 1 {
		t.Errorf("WithSenders(1): %d senders", e.cfg.Senders)
	}
}

// The requests of each signal carry its own headers, compression and
// timeout, as the per-signal variables say: spans go out with their
// header list and uncompressed, logs gzipped, and a metrics request is
// cut after the 50 ms of OTEL_EXPORTER_OTLP_METRICS_TIMEOUT, not the
// general 20 s, then sent again.
func TestEnvPerSignalRequests(t *testing.T) {
	type seen struct{ apiKey, encoding string }
	var (
		mu       sync.Mutex
		got      = map[string][]seen{}
		cut      = make(chan struct{})
		cutFirst sync.Once
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		mu.Lock()
		got[req.URL.Path] = append(got[req.URL.Path], seen{req.Header.Get("api-key"), req.Header.Get("Content-Encoding")})
		n := len(got[req.URL.Path])
		mu.Unlock()
		if req.URL.Path == "/v1/metrics" && n == 1 {
			<-req.Context().Done() // the exporter's timeout cuts it
			cutFirst.Do(func() { close(cut) })
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=general")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=traces")
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
	t.Setenv("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "gzip")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "20000")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "50")
	e, err := New(srv.URL, WithEnv(), WithRetry(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	e.Log(&Class{Name: "a:b"}, 1, nil, 0)
	e.Span(&SpanData{Name: "s", Scope: Scope{Name: "m"}, TraceID: [16]byte{1}, SpanID: [8]byte{2}, StartNS: 1, EndNS: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := Metric{Name: "m.count", Sum: &Sum{Monotonic: true, Points: []NumberPoint{{Value: 7}}}}
	if err := e.ExportMetrics(ctx, []Metric{m}); err != nil {
		t.Fatalf("metrics: %v (the first attempt must end after 50 ms)", err)
	}
	<-cut
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]seen{"/v1/logs": {"general", "gzip"}, "/v1/traces": {"traces", ""}, "/v1/metrics": {"general", ""}}
	for path, w := range want {
		if len(got[path]) == 0 || got[path][0] != w {
			t.Errorf("%s: requests %+v, want %+v", path, got[path], w)
		}
	}
	if len(got["/v1/metrics"]) != 2 {
		t.Errorf("%d metrics requests, want 2: one cut, one answered", len(got["/v1/metrics"]))
	}
}
