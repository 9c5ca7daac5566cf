package otlp

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config.
const (
	// DefaultEndpoint is the collector's OTLP/HTTP address.
	DefaultEndpoint = "http://localhost:4318"
	// DefaultTimeout bounds one export request (OTEL_EXPORTER_OTLP_TIMEOUT).
	DefaultTimeout = 10 * time.Second
	// DefaultBatchSize is the number of events of a full batch.
	DefaultBatchSize = 8192
	// DefaultBatchBytes is the encoded size of a full batch.
	DefaultBatchBytes = 4 << 20
	// DefaultBatchDelay is how long an event may wait for its batch to
	// fill before the batch is sent anyway.
	DefaultBatchDelay = time.Second
	// DefaultQueueSize is the number of events held in memory, encoded,
	// while they wait to be sent; beyond it new events are dropped.
	DefaultQueueSize = 256 << 10
)

// Compression values.
const (
	CompressionNone = "none"
	CompressionGzip = "gzip"
)

// ErrConfig is matched by the errors of a configuration that cannot
// work, such as an endpoint that is not an http(s) URL.
var ErrConfig = errors.New("otlp: invalid configuration")

// Config configures an Exporter. The zero value of each field means its
// default; FromEnv fills it from the OpenTelemetry environment variables.
type Config struct {
	// Endpoint is the collector's base URL, such as
	// http://localhost:4318; the exporter appends /v1/logs, /v1/traces
	// and /v1/metrics.
	Endpoint string
	// LogsURL, TracesURL and MetricsURL, if set, are the full URLs of
	// one signal (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, ...), used as given.
	LogsURL, TracesURL, MetricsURL string
	// Headers are added to every request (authentication, tenants).
	Headers map[string]string
	// Timeout bounds each request.
	Timeout time.Duration
	// Compression is CompressionGzip or CompressionNone (the default).
	Compression string
	// Resource describes what sent the events: service.name, host.name,
	// process.pid... (see ProcessResource).
	Resource []Attribute

	// BatchSize, BatchBytes and BatchDelay say when a batch is sent: when
	// it holds BatchSize events or BatchBytes encoded bytes, or when its
	// first event waited BatchDelay.
	BatchSize  int
	BatchBytes int
	BatchDelay time.Duration
	// QueueSize bounds the events in memory (being batched, queued or
	// sent). An event that finds the queue full is dropped and counted.
	QueueSize int
	// Block makes Log and Span wait for room in a full queue instead of
	// dropping the event: for reading trace files, where waiting loses
	// nothing. A recording should not block: the traced program would
	// then lose the events, in its own buffers.
	Block bool
	// RetryInitial and RetryMax are the first and the longest wait
	// between attempts to send a batch (defaults 100 ms and 5 s). A
	// server's Retry-After wins.
	RetryInitial, RetryMax time.Duration
	// Client sends the requests; nil means a client of its own.
	Client *http.Client
}

// FromEnv returns the configuration that the OpenTelemetry environment
// variables describe: OTEL_EXPORTER_OTLP_ENDPOINT (and the per-signal
// OTEL_EXPORTER_OTLP_{LOGS,TRACES,METRICS}_ENDPOINT),
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds)
// and OTEL_EXPORTER_OTLP_COMPRESSION. OTEL_EXPORTER_OTLP_PROTOCOL, if set,
// must be http/protobuf. The resource is left empty: see ProcessResource.
func FromEnv() (Config, error) { return fromEnv(os.Getenv) }

func fromEnv(getenv func(string) string) (Config, error) {
	var c Config
	c.Endpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	c.LogsURL = getenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
	c.TracesURL = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	c.MetricsURL = getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
	if p := getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
		return c, fmt.Errorf("%w: OTEL_EXPORTER_OTLP_PROTOCOL=%q: only http/protobuf is supported", ErrConfig, p)
	}
	if h := getenv("OTEL_EXPORTER_OTLP_HEADERS"); h != "" {
		m, err := ParseHeaders(h)
		if err != nil {
			return c, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: %w", err)
		}
		c.Headers = m
	}
	if t := getenv("OTEL_EXPORTER_OTLP_TIMEOUT"); t != "" {
		ms, err := strconv.ParseUint(t, 10, 31)
		if err != nil {
			return c, fmt.Errorf("%w: OTEL_EXPORTER_OTLP_TIMEOUT=%q: want milliseconds", ErrConfig, t)
		}
		c.Timeout = time.Duration(ms) * time.Millisecond
	}
	c.Compression = strings.ToLower(getenv("OTEL_EXPORTER_OTLP_COMPRESSION"))
	return c, c.check()
}

// ParseHeaders parses the W3C-baggage-like list of OTEL_EXPORTER_OTLP_HEADERS
// and OTEL_RESOURCE_ATTRIBUTES: key=value pairs separated by commas,
// values percent-encoded.
func ParseHeaders(s string) (map[string]string, error) {
	m := map[string]string{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %q is not key=value", ErrConfig, item)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%w: value of %q: %v", ErrConfig, k, err)
		}
		m[k] = dv
	}
	return m, nil
}

func (c *Config) check() error {
	switch c.Compression {
	case "", CompressionNone, CompressionGzip:
	default:
		return fmt.Errorf("%w: compression %q: want gzip or none", ErrConfig, c.Compression)
	}
	for _, u := range []string{c.Endpoint, c.LogsURL, c.TracesURL, c.MetricsURL} {
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%w: endpoint %q: want an http:// or https:// URL such as %s", ErrConfig, u, DefaultEndpoint)
		}
	}
	return nil
}

func (c *Config) defaults() {
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
	}
	base := strings.TrimSuffix(c.Endpoint, "/")
	if c.LogsURL == "" {
		c.LogsURL = base + "/v1/logs"
	}
	if c.TracesURL == "" {
		c.TracesURL = base + "/v1/traces"
	}
	if c.MetricsURL == "" {
		c.MetricsURL = base + "/v1/metrics"
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.BatchDelay <= 0 {
		c.BatchDelay = DefaultBatchDelay
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	c.QueueSize = max(c.QueueSize, c.BatchSize)
	if c.RetryInitial <= 0 {
		c.RetryInitial = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
}

// Process describes the traced process for ProcessResource.
type Process struct {
	PID int
	// Executable is the program's path or name.
	Executable string
	Host       string
}

// ProcessResource returns the resource attributes of a process:
// service.name, host.name, process.pid, process.executable.name and
// telemetry.sdk.{name,language}, after the OpenTelemetry conventions.
// OTEL_RESOURCE_ATTRIBUTES adds attributes (and may set service.name);
// OTEL_SERVICE_NAME sets service.name. Without either, service.name is
// "unknown_service:" and the executable's name, as the OpenTelemetry
// SDKs do.
func ProcessResource(p Process) ([]Attribute, error) { return processResource(p, os.Getenv) }

func processResource(p Process, getenv func(string) string) ([]Attribute, error) {
	exe := filepath.Base(p.Executable)
	service := "unknown_service:" + exe
	var extra []Attribute
	if s := getenv("OTEL_RESOURCE_ATTRIBUTES"); s != "" {
		m, err := ParseHeaders(s)
		if err != nil {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
		}
		if v, ok := m["service.name"]; ok {
			service = v
			delete(m, "service.name")
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			extra = append(extra, Attribute{Key: k, Value: m[k]})
		}
	}
	if s := getenv("OTEL_SERVICE_NAME"); s != "" {
		service = s
	}
	attrs := []Attribute{{"service.name", service}}
	if p.Host != "" {
		attrs = append(attrs, Attribute{"host.name", p.Host})
	}
	if p.PID != 0 {
		attrs = append(attrs, Attribute{"process.pid", int64(p.PID)})
	}
	if exe != "" && exe != "." {
		attrs = append(attrs, Attribute{"process.executable.name", exe})
	}
	attrs = append(attrs, Attribute{"telemetry.sdk.name", "tracemark"}, Attribute{"telemetry.sdk.language", "go"})
	// Attributes of OTEL_RESOURCE_ATTRIBUTES replace the detected ones.
	for _, e := range extra {
		replaced := false
		for i := range attrs {
			if attrs[i].Key == e.Key {
				attrs[i], replaced = e, true
			}
		}
		if !replaced {
			attrs = append(attrs, e)
		}
	}
	return attrs, nil
}
