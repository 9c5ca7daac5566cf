package otlp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
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
	if c := e.cfg; c.LogsURL != "http://logs:4318/v1/logs" || c.TracesURL != "http://env:4318/v1/traces" ||
		c.Timeout != 2*time.Second || c.Compression != CompressionGzip || c.Headers["tenant"] != "acme" {
		t.Errorf("from the environment: %+v", c)
	}

	e, err = New("https://c:4318", WithEnv(), WithHeaders(map[string]string{"authorization": "new"}), WithCompression(CompressionNone))
	if err != nil {
		t.Fatal(err)
	}
	e.Close(context.Background())
	if c := e.cfg; c.LogsURL != "https://c:4318/v1/logs" || c.MetricsURL != "https://c:4318/v1/metrics" ||
		c.Headers["tenant"] != "acme" || c.Headers["authorization"] != "new" || c.Compression != CompressionNone || c.Timeout != 2*time.Second {
		t.Errorf("explicit endpoint and options after WithEnv: %+v", c)
	}

	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")
	if _, err := New("", WithEnv()); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "WithEnv: ") || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TIMEOUT") {
		t.Errorf("bad variable: %v", err)
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
