package otlp

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
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
