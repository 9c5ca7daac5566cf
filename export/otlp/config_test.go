package otlp

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/internal/otlptest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	c, err := fromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":      "https://otel.example:4318/",
		"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://logs.example/ingest",
		"OTEL_EXPORTER_OTLP_HEADERS":       "api-key=s%20ecret, tenant = a",
		"OTEL_EXPORTER_OTLP_TIMEOUT":       "2500",
		"OTEL_EXPORTER_OTLP_COMPRESSION":   "GZIP",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c.defaults()
	if c.LogsURL != "https://logs.example/ingest" || c.TracesURL != "https://otel.example:4318/v1/traces" || c.MetricsURL != "https://otel.example:4318/v1/metrics" {
		t.Errorf("URLs %q %q %q", c.LogsURL, c.TracesURL, c.MetricsURL)
	}
	for _, sc := range c.Signal {
		if !reflect.DeepEqual(sc.Headers, map[string]string{"api-key": "s ecret", "tenant": "a"}) {
			t.Errorf("headers %v", sc.Headers)
		}
		if sc.Timeout != 2500*time.Millisecond || sc.Compression != CompressionGzip {
			t.Errorf("timeout %v compression %q", sc.Timeout, sc.Compression)
		}
	}
	if len(c.warnings) != 0 {
		t.Errorf("warnings %q", c.warnings)
	}
	for _, bad := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "HTTP/JSON"},
		{"OTEL_EXPORTER_OTLP_HEADERS": "novalue"},
		{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "novalue"},
		{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "collector/v1/metrics"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"},
		// Headers net/http would refuse at every request.
		{"OTEL_EXPORTER_OTLP_HEADERS": "api key=x"},
		{"OTEL_EXPORTER_OTLP_HEADERS": "x=b%0D%0AInjected: 1"},
		{"OTEL_EXPORTER_OTLP_HEADERS": "x=a%00b"},
	} {
		if _, err := fromEnv(env(bad)); !errors.Is(err, ErrConfig) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	c, err = fromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.defaults()
	if c.LogsURL != "http://localhost:4318/v1/logs" || !reflect.DeepEqual(c.Signal, [numSignals]signalConfig{{Timeout: DefaultTimeout}, {Timeout: DefaultTimeout}, {Timeout: DefaultTimeout}}) {
		t.Errorf("defaults: %+v", c)
	}
}

// Each signal's variables replace the general ones for its requests: a
// per-signal header list replaces the general list, and a timeout of 0
// is no limit.
func TestFromEnvPerSignal(t *testing.T) {
	c, err := fromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_HEADERS":             "tenant=a,api-key=general",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":      "api-key=traces",
		"OTEL_EXPORTER_OTLP_TIMEOUT":             "2500",
		"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT":     "0",
		"OTEL_EXPORTER_OTLP_COMPRESSION":         "none",
		"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION":    "Gzip",
		"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL":    "http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION":  "",
		"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT":        "",
		"OTEL_EXPORTER_OTLP_LOGS_HEADERS":        "",
		"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "",
	}))
	if err != nil {
		t.Fatal(err)
	}
	general := map[string]string{"tenant": "a", "api-key": "general"}
	want := [numSignals]signalConfig{
		sigLogs:    {Headers: general, Timeout: 2500 * time.Millisecond, Compression: CompressionGzip},
		sigTraces:  {Headers: map[string]string{"api-key": "traces"}, Timeout: 2500 * time.Millisecond, Compression: CompressionNone},
		sigMetrics: {Headers: general, Timeout: NoTimeout, Compression: CompressionNone},
	}
	if !reflect.DeepEqual(c.Signal, want) {
		t.Errorf("got  %+v\nwant %+v", c.Signal, want)
	}
	if len(c.warnings) != 0 {
		t.Errorf("warnings %q", c.warnings)
	}
}

func TestProcessResource(t *testing.T) {
	p := Process{PID: 7, Executable: "/usr/bin/shop", Host: "h1"}
	got, err := processResource(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []Attribute{
		{"service.name", "unknown_service:shop"}, {"host.name", "h1"}, {"process.pid", int64(7)},
		{"process.executable.name", "shop"}, {"telemetry.sdk.name", "tracemark"}, {"telemetry.sdk.language", "go"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	got, _ = processResource(p, env(map[string]string{
		"OTEL_RESOURCE_ATTRIBUTES": "service.name=fromattrs,deployment.environment=prod,host.name=override",
	}))
	if got[0].Value != "fromattrs" || got[1].Value != "override" || got[len(got)-1] != (Attribute{"deployment.environment", "prod"}) {
		t.Errorf("OTEL_RESOURCE_ATTRIBUTES: %v", got)
	}
	got, _ = processResource(p, env(map[string]string{
		"OTEL_RESOURCE_ATTRIBUTES": "service.name=fromattrs", "OTEL_SERVICE_NAME": "svc",
	}))
	if got[0].Value != "svc" {
		t.Errorf("OTEL_SERVICE_NAME must win: %v", got)
	}
	if _, err := processResource(p, env(map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "x"})); !errors.Is(err, ErrConfig) {
		t.Errorf("bad OTEL_RESOURCE_ATTRIBUTES: %v", err)
	}
}

// WithHeaders refuses what no request could carry, rather than have
// every request fail and be retried.
func TestHeadersChecked(t *testing.T) {
	for _, h := range []map[string]string{{"api key": "x"}, {"x": "a\r\nb: c"}, {"é": "x"}, {"x(": "y"}} {
		if _, err := New("http://localhost:4318", WithHeaders(h)); !errors.Is(err, ErrConfig) {
			t.Errorf("WithHeaders(%q): %v, want ErrConfig", h, err)
		}
	}
	e, err := New("http://localhost:4318", WithHeaders(map[string]string{"Authorization": "Bearer a\tb", "x-tenant_1.~": ""}))
	if err != nil {
		t.Fatal(err)
	}
	e.Close(t.Context())
}

// A per-signal variable takes precedence over the general one, its
// errors too: a general value that no signal falls back to fails
// nothing, one that a signal falls back to fails the start.
func TestFromEnvGeneralOverridden(t *testing.T) {
	allHTTP := map[string]string{
		"OTEL_EXPORTER_OTLP_PROTOCOL":         "grpc",
		"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL":    "http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL":  "http/protobuf",
		"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_HEADERS":          "novalue",
		"OTEL_EXPORTER_OTLP_LOGS_HEADERS":     "a=1",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":   "a=2",
		"OTEL_EXPORTER_OTLP_METRICS_HEADERS":  "a=3",
	}
	c, err := fromEnv(env(allHTTP))
	if err != nil {
		t.Fatalf("every signal overrides the general variables: %v", err)
	}
	if c.Signal[sigTraces].Headers["a"] != "2" {
		t.Errorf("traces headers %v", c.Signal[sigTraces].Headers)
	}
	for _, drop := range []string{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		m := maps.Clone(allHTTP)
		delete(m, drop)
		if _, err := fromEnv(env(m)); !errors.Is(err, ErrConfig) {
			t.Errorf("without %s a signal falls back to the general value: %v, want ErrConfig", drop, err)
		}
	}
}

// The batch log record processor's variables set the batch size, the
// queue and the delay; a value that is not a positive count is ignored
// with a warning naming it, and the span processor's are not read.
func TestFromEnvBatchProcessor(t *testing.T) {
	c, err := fromEnv(env(map[string]string{
		"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "100",
		"OTEL_BLRP_MAX_QUEUE_SIZE":        "5000",
		"OTEL_BLRP_SCHEDULE_DELAY":        "250",
		"OTEL_BSP_MAX_QUEUE_SIZE":         "7",
		"OTEL_BLRP_EXPORT_TIMEOUT":        "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BatchSize != 100 || c.QueueSize != 5000 || c.BatchDelay != 250*time.Millisecond || len(c.warnings) != 0 {
		t.Errorf("batch %d, queue %d, delay %v, warnings %q", c.BatchSize, c.QueueSize, c.BatchDelay, c.warnings)
	}
	for _, bad := range []string{"0", "-5", "1e3", "many", "4294967296"} {
		c, err := fromEnv(env(map[string]string{
			"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": bad, "OTEL_BLRP_MAX_QUEUE_SIZE": bad, "OTEL_BLRP_SCHEDULE_DELAY": bad}))
		if err != nil {
			t.Fatal(err)
		}
		if c.BatchSize != 0 || c.QueueSize != 0 || c.BatchDelay != 0 || len(c.warnings) != 3 ||
			!strings.Contains(c.warnings[0], "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE") {
			t.Errorf("%q: batch %d, queue %d, delay %v, warnings %q", bad, c.BatchSize, c.QueueSize, c.BatchDelay, c.warnings)
		}
	}
}

// WithEnv's batch size and queue take effect: 1000 events go in
// requests of 100, and with the collector not answering, the queue holds
// 50 events and the others are dropped and counted.
func TestEnvBatchAndQueue(t *testing.T) {
	t.Setenv("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "100")
	r := otlptest.NewReceiver(t)
	e := newTestExporter(t, r, WithEnv(), WithBlock())
	c := testClass
	for i := range 1000 {
		e.Log(&c, int64(i), testValues(i), 0)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Exported != 1000 || st.Requests != 10 || len(r.Logs()) != 1000 {
		t.Errorf("exported %d in %d requests, received %d: want 1000 in 10", st.Exported, st.Requests, len(r.Logs()))
	}

	t.Setenv("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "10")
	t.Setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "50")
	release := make(chan struct{})
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		<-release
	}))
	defer stalled.Close()
	defer close(release)
	e, err := New(stalled.URL, WithEnv())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		e.Log(&c, int64(i), testValues(i), 0)
	}
	if st := e.Stats(); st.Dropped != 150 || st.Queued != 50 {
		t.Errorf("dropped %d, queued %d: want 150 and 50", st.Dropped, st.Queued)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	e.Close(ctx)
}
