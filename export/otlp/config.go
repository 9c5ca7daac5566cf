package otlp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of an Exporter (see the With functions).
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

// Option configures New. Options are made by the With functions of this
// package; the zero configuration, New without options, is the default of
// each. An option given an invalid value makes New fail with an error
// wrapping ErrConfig and naming the option.
type Option interface{ apply(*config) }

// optionFunc is an Option that sets its field of the configuration.
type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is an exporter's configuration, defaults filled in by New.
type config struct {
	// Endpoint is the collector's base URL; the exporter appends
	// /v1/logs, /v1/traces and /v1/metrics.
	Endpoint string
	// LogsURL, TracesURL and MetricsURL, if set, are the full URLs of
	// one signal, used as given.
	LogsURL, TracesURL, MetricsURL string
	// Signal holds what the requests of each signal (sigLogs,
	// sigTraces, sigMetrics) carry: WithHeaders, WithTimeout and
	// WithCompression set all three, a per-signal variable of WithEnv
	// its own.
	Signal                 [numSignals]signalConfig
	Resource               []Attribute
	BatchSize              int
	BatchBytes             int
	BatchDelay             time.Duration
	QueueSize              int
	Block                  bool
	Senders                int
	RetryInitial, RetryMax time.Duration
	Client                 *http.Client

	env      *config  // WithEnv's endpoints, used when New's endpoint is empty
	errs     []error  // invalid option values, reported by New
	warnings []string // settings of the environment ignored (Exporter.Warnings)
}

// signalConfig is what may differ between the requests of two signals,
// as the OpenTelemetry variables let it.
type signalConfig struct {
	Headers     map[string]string
	Timeout     time.Duration
	Compression string
}

// NoTimeout is the bound of a request that OTEL_EXPORTER_OTLP_TIMEOUT=0
// sets: no limit, which the OpenTelemetry specification lets an exporter
// make "a very long time", the longest 32-bit count of milliseconds
// (about 24.8 days).
const NoTimeout = math.MaxInt32 * time.Millisecond

// invalid records that option was given an invalid value.
func (c *config) invalid(option string, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: %s: %s", ErrConfig, option, fmt.Sprintf(format, args...)))
}

// WithEnv applies the OpenTelemetry environment variables of the OTLP
// exporter, as the OpenTelemetry SDKs read them:
// OTEL_EXPORTER_OTLP_ENDPOINT (used only when New's endpoint is empty: an
// endpoint given to New wins over all of them),
// OTEL_EXPORTER_OTLP_HEADERS (added to the headers, key by key, as
// WithHeaders), OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds; 0 is no limit,
// NoTimeout), OTEL_EXPORTER_OTLP_COMPRESSION (gzip or none) and
// OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf, the only one supported),
// and their per-signal forms, OTEL_EXPORTER_OTLP_LOGS_HEADERS and so on
// for LOGS, TRACES and METRICS, each of which replaces the general one
// for its signal's requests; and the batch log record processor's
// OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, OTEL_BLRP_MAX_QUEUE_SIZE and
// OTEL_BLRP_SCHEDULE_DELAY (milliseconds), as WithBatch's size and delay
// and WithQueueSize (for every signal: spans share the log records'
// batch settings and queue, and OTEL_BSP_* are not read, nor is
// OTEL_BLRP_EXPORT_TIMEOUT). Unset or empty variables change nothing;
// options after WithEnv override what it set. The variables are read
// when New runs. As the specification asks, enumerated values are read
// whatever their case, and an unknown compression or protocol, or a
// timeout that is not a count of milliseconds, or a batch size, queue
// size or delay that is not a positive count, is ignored with a warning
// (Exporter.Warnings); a malformed endpoint or header list, or a
// protocol other than http/protobuf, makes New fail with an error naming
// the variable. The resource is left alone: see ProcessResource.
func WithEnv() Option {
	return optionFunc(func(c *config) {
		env, err := fromEnv(os.Getenv)
		c.warnings = append(c.warnings, env.warnings...)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("WithEnv: %w", err))
			return
		}
		c.env = &config{Endpoint: env.Endpoint, LogsURL: env.LogsURL, TracesURL: env.TracesURL, MetricsURL: env.MetricsURL}
		for s := range c.Signal {
			es, cs := &env.Signal[s], &c.Signal[s]
			cs.addHeaders(es.Headers)
			if es.Timeout > 0 {
				cs.Timeout = es.Timeout
			}
			if es.Compression != "" {
				cs.Compression = es.Compression
			}
		}
		if env.BatchSize > 0 {
			c.BatchSize = env.BatchSize
		}
		if env.QueueSize > 0 {
			c.QueueSize = env.QueueSize
		}
		if env.BatchDelay > 0 {
			c.BatchDelay = env.BatchDelay
		}
	})
}

// WithSignalURLs sets the full URLs of the logs, traces and metrics
// endpoints, used as given instead of New's endpoint followed by
// /v1/logs, /v1/traces and /v1/metrics (the default, which an empty URL
// keeps). Each must be an http:// or https:// URL.
func WithSignalURLs(logs, traces, metrics string) Option {
	return optionFunc(func(c *config) {
		for _, u := range []string{logs, traces, metrics} {
			if u != "" && !httpURL(u) {
				c.invalid("WithSignalURLs", "endpoint %q: want an http:// or https:// URL such as %s/v1/logs", u, DefaultEndpoint)
				return
			}
		}
		if logs != "" {
			c.LogsURL = logs
		}
		if traces != "" {
			c.TracesURL = traces
		}
		if metrics != "" {
			c.MetricsURL = metrics
		}
	})
}

// WithHeaders adds h to the headers of every request (authentication,
// tenants); by default there are none. Several WithHeaders (and WithEnv)
// add up, key by key, the last one's value winning. Keys must not be
// empty.
func WithHeaders(h map[string]string) Option {
	return optionFunc(func(c *config) {
		if _, ok := h[""]; ok {
			c.invalid("WithHeaders", "empty header name")
			return
		}
		for s := range c.Signal {
			c.Signal[s].addHeaders(h)
		}
	})
}

func (c *signalConfig) addHeaders(h map[string]string) {
	if len(h) == 0 {
		return
	}
	if c.Headers == nil {
		c.Headers = make(map[string]string, len(h))
	}
	maps.Copy(c.Headers, h)
}

// WithTimeout bounds each request (default DefaultTimeout, which d = 0
// keeps); a negative d is invalid.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("WithTimeout", "negative timeout %v; 0 keeps the default", d)
			return
		}
		if d > 0 {
			for s := range c.Signal {
				c.Signal[s].Timeout = d
			}
		}
	})
}

// WithCompression sets the compression of request bodies:
// CompressionGzip, or CompressionNone (the default, which "" keeps). Any
// other value is invalid.
func WithCompression(compression string) Option {
	return optionFunc(func(c *config) {
		switch compression {
		case "":
		case CompressionNone, CompressionGzip:
			for s := range c.Signal {
				c.Signal[s].Compression = compression
			}
		default:
			c.invalid("WithCompression", "compression %q: want gzip or none", compression)
		}
	})
}

// WithResource sets the attributes that describe what sent the events:
// service.name, host.name, process.pid... (see ProcessResource). By
// default the resource has no attribute.
func WithResource(attrs ...Attribute) Option {
	return optionFunc(func(c *config) { c.Resource = slices.Clone(attrs) })
}

// WithBatch says when a batch is sent: when it holds size events or
// bytes encoded bytes, or when its first event waited delay. The
// defaults are DefaultBatchSize, DefaultBatchBytes and
// DefaultBatchDelay; a zero value keeps its default, and a negative one
// is invalid. An empty batch takes the records of a Commit whole, up to
// twice size (within bytes), rather than copy them into two batches.
func WithBatch(size, bytes int, delay time.Duration) Option {
	return optionFunc(func(c *config) {
		if size < 0 || bytes < 0 || delay < 0 {
			c.invalid("WithBatch", "negative value (size %d, bytes %d, delay %v); 0 keeps the default", size, bytes, delay)
			return
		}
		if size > 0 {
			c.BatchSize = size
		}
		if bytes > 0 {
			c.BatchBytes = bytes
		}
		if delay > 0 {
			c.BatchDelay = delay
		}
	})
}

// WithQueueSize bounds the events in memory (being batched, queued or
// sent): an event that finds the queue full is dropped and counted. The
// default, which n = 0 keeps, is DefaultQueueSize; the queue holds at
// least one batch (WithBatch) whatever n, and a negative n is invalid.
func WithQueueSize(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithQueueSize", "negative size %d; 0 keeps the default", n)
			return
		}
		if n > 0 {
			c.QueueSize = n
		}
	})
}

// WithBlock makes Log and Span wait for room in a full queue instead of
// dropping the event (the default): for reading trace files, where
// waiting loses nothing. A recording should not block: the traced
// program would then lose the events, in its own buffers.
func WithBlock() Option { return optionFunc(func(c *config) { c.Block = true }) }

// WithSenders sets how many batches are compressed and sent at once, each
// by a goroutine of its own: while one waits for the collector's answer
// (or compresses), the next goes out. The default, which n = 0 keeps, is
// DefaultSenders of the compression; a negative n is invalid. Batches sent at once may
// arrive in any order (OTLP does not order them: the timestamps do).
func WithSenders(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithSenders", "negative number %d; 0 keeps the default", n)
			return
		}
		if n > 0 {
			c.Senders = n
		}
	})
}

// DefaultSenders is the number of batches sent at once, with compression
// (CompressionNone or CompressionGzip), unless WithSenders says otherwise:
// with gzip, a quarter of GOMAXPROCS, at least 1 and at most 4;
// uncompressed, 8 (uncompressedSenders). The exporter shares the machine with
// what it exports (the traced program, the recorder's decoding): on two
// cores a second gzip sender made exports slower, its compression
// competing with the encoding for the same CPUs. Uncompressed, a sender
// mostly waits for the collector's answer, and the exporter keeps up
// only with enough batches in flight.
func DefaultSenders(compression string) int {
	if compression != CompressionGzip {
		return uncompressedSenders
	}
	return min(max(runtime.GOMAXPROCS(0)/4, 1), 4)
}

// uncompressedSenders is the default number of batches sent at once
// uncompressed, about as many as the OpenTelemetry Collector's exporters
// send (sending_queue.num_consumers, 10): with 2, `tracemark record
// --otlp` on two cores lost 0.3–1.3 % of 9 M events/s in the exporter's
// queue, with 4 up to 0.23 %, with 8 nothing (docs/design.md). The queue
// bounds the memory whatever the number: batches in flight count in it.
const uncompressedSenders = 8

// WithRetry sets the first and the longest wait between attempts to send
// a batch (defaults 100 ms and 5 s; a zero value keeps its default, a
// negative one is invalid). A server's Retry-After wins.
func WithRetry(initial, max time.Duration) Option {
	return optionFunc(func(c *config) {
		if initial < 0 || max < 0 {
			c.invalid("WithRetry", "negative wait (initial %v, max %v); 0 keeps the default", initial, max)
			return
		}
		if initial > 0 {
			c.RetryInitial = initial
		}
		if max > 0 {
			c.RetryMax = max
		}
	})
}

// WithHTTPClient sends the requests with client; by default, and with a
// nil client, the exporter uses a client of its own.
func WithHTTPClient(client *http.Client) Option {
	return optionFunc(func(c *config) { c.Client = client })
}

// signalEnv names each signal in its variables' names.
var signalEnv = [numSignals]string{sigLogs: "LOGS", sigTraces: "TRACES", sigMetrics: "METRICS"}

// fromEnv returns the configuration that the OpenTelemetry environment
// variables describe (see WithEnv), with warnings for what it ignored.
func fromEnv(getenv func(string) string) (config, error) {
	var c config
	c.Endpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	c.LogsURL = getenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
	c.TracesURL = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	c.MetricsURL = getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
	const prefix = "OTEL_EXPORTER_OTLP_"
	// A general variable's error counts only for the signals that fall
	// back to it: the per-signal ones take precedence.
	var general signalConfig
	_, protoErr := c.envProtocol(getenv, prefix)
	headers, _, headersErr := envHeaders(getenv, prefix)
	general.Headers = headers
	c.readTimeoutCompression(getenv, prefix, &general)
	for s := range c.Signal {
		sp := prefix + signalEnv[s] + "_"
		sc := &c.Signal[s]
		*sc = general
		set, err := c.envProtocol(getenv, sp)
		if !set {
			err = protoErr
		}
		if err != nil {
			return c, err
		}
		h, set, err := envHeaders(getenv, sp)
		if set {
			sc.Headers = h
		} else {
			err = headersErr
		}
		if err != nil {
			return c, err
		}
		c.readTimeoutCompression(getenv, sp, sc)
	}
	c.readBatchProcessor(getenv)
	return c, c.check()
}

// readBatchProcessor reads the variables of the SDKs' batch log record
// processor, which bound what this exporter batches and holds:
// OTEL_BLRP_MAX_EXPORT_BATCH_SIZE (the events of a batch),
// OTEL_BLRP_MAX_QUEUE_SIZE (the events in memory) and
// OTEL_BLRP_SCHEDULE_DELAY (how many milliseconds a batch's first event
// may wait). A value that is not a positive count is ignored with a
// warning. OTEL_BLRP_EXPORT_TIMEOUT and the span processor's OTEL_BSP_*
// are not read (the program's own SDK may have them set): each request
// is bounded by OTEL_EXPORTER_OTLP_TIMEOUT, and spans share the log
// records' batch settings and queue.
func (c *config) readBatchProcessor(getenv func(string) string) {
	c.BatchSize = c.envCount(getenv, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE")
	c.QueueSize = c.envCount(getenv, "OTEL_BLRP_MAX_QUEUE_SIZE")
	if ms := c.envCount(getenv, "OTEL_BLRP_SCHEDULE_DELAY"); ms > 0 {
		c.BatchDelay = time.Duration(ms) * time.Millisecond
	}
}

// envCount reads variable name as a positive count, or returns 0 (unset,
// or not a positive count: then with a warning).
func (c *config) envCount(getenv func(string) string, name string) int {
	v := getenv(name)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil || n == 0 {
		c.warn("%s=%q is not a positive count: ignored", name, v)
		return 0
	}
	return int(n)
}

// envProtocol reads prefix+PROTOCOL: whether it is set, and an error if
// it asks for a protocol other than http/protobuf. An unknown value is
// ignored with a warning.
func (c *config) envProtocol(getenv func(string) string, prefix string) (set bool, err error) {
	switch p := getenv(prefix + "PROTOCOL"); strings.ToLower(p) {
	case "":
		return false, nil
	case "http/protobuf":
	case "grpc", "http/json":
		return true, fmt.Errorf("%w: %sPROTOCOL=%q: only http/protobuf is supported", ErrConfig, prefix, p)
	default:
		c.warn("%sPROTOCOL=%q is not a protocol (grpc, http/protobuf or http/json): ignored, http/protobuf is used", prefix, p)
	}
	return true, nil
}

// envHeaders reads prefix+HEADERS: the headers, whether it is set, and
// an error if it is malformed.
func envHeaders(getenv func(string) string, prefix string) (map[string]string, bool, error) {
	h := getenv(prefix + "HEADERS")
	if h == "" {
		return nil, false, nil
	}
	m, err := ParseHeaders(h)
	for k, v := range m {
		err = cmp.Or(err, checkHeader(k, v))
	}
	if err != nil {
		return nil, true, fmt.Errorf("%sHEADERS: %w", prefix, err)
	}
	return m, true, nil
}

// readTimeoutCompression reads prefix+TIMEOUT and COMPRESSION into sc,
// where they are set; a value it does not know is ignored with a
// warning.
func (c *config) readTimeoutCompression(getenv func(string) string, prefix string, sc *signalConfig) {
	if t := getenv(prefix + "TIMEOUT"); t != "" {
		switch ms, err := strconv.ParseUint(t, 10, 31); {
		case err != nil:
			c.warn("%sTIMEOUT=%q is not a count of milliseconds: ignored", prefix, t)
		case ms == 0:
			sc.Timeout = NoTimeout
		default:
			sc.Timeout = time.Duration(ms) * time.Millisecond
		}
	}
	switch z := getenv(prefix + "COMPRESSION"); strings.ToLower(z) {
	case "":
	case CompressionGzip, CompressionNone:
		sc.Compression = strings.ToLower(z)
	default:
		c.warn("%sCOMPRESSION=%q is not gzip or none: ignored", prefix, z)
	}
}

func (c *config) warn(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
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

// checkHeader checks a request header: a name that is an HTTP token
// (RFC 9110, 5.6.2) and a value without control characters but tab, so
// that a malformed OTEL_EXPORTER_OTLP_HEADERS ("api key=x", a
// percent-encoded line break) is refused by New with its name, not by
// every request, retried until the exporter gives up.
func checkHeader(k, v string) error {
	if k == "" {
		return fmt.Errorf("%w: empty header name", ErrConfig)
	}
	for i := 0; i < len(k); i++ {
		if b := k[i]; b >= 0x7f || !(b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0) {
			return fmt.Errorf("%w: header name %q: %q is not allowed in a header name", ErrConfig, k, b)
		}
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 && b != '\t' || b == 0x7f {
			return fmt.Errorf("%w: header %q: its value holds control character %q", ErrConfig, k, b)
		}
	}
	return nil
}

func httpURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

func (c *config) check() error {
	for _, sc := range c.Signal {
		for _, k := range slices.Sorted(maps.Keys(sc.Headers)) {
			if err := checkHeader(k, sc.Headers[k]); err != nil {
				return err
			}
		}
		switch sc.Compression {
		case "", CompressionNone, CompressionGzip:
		default:
			return fmt.Errorf("%w: compression %q: want gzip or none", ErrConfig, sc.Compression)
		}
	}
	for _, u := range []string{c.Endpoint, c.LogsURL, c.TracesURL, c.MetricsURL} {
		if u == "" {
			continue
		}
		if !httpURL(u) {
			return fmt.Errorf("%w: endpoint %q: want an http:// or https:// URL such as %s", ErrConfig, u, DefaultEndpoint)
		}
	}
	return nil
}

// url returns the URL of sig's requests.
func (c *config) url(sig signal) string {
	switch sig {
	case sigTraces:
		return c.TracesURL
	case sigMetrics:
		return c.MetricsURL
	}
	return c.LogsURL
}

func (c *config) defaults() {
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
	for s := range c.Signal {
		if c.Signal[s].Timeout <= 0 {
			c.Signal[s].Timeout = DefaultTimeout
		}
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
	if c.Senders <= 0 {
		// The senders send logs and spans; most are logs.
		c.Senders = DefaultSenders(c.Signal[sigLogs].Compression)
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.Client == nil {
		c.Client = defaultClient(c.Senders)
	}
}

// writeBuffer is the size of the default client's write buffer. It
// holds a request's headers and the start of its body: on plain TCP
// connections the rest of the body goes out with one writev from where
// the batch lies (bodyConn); elsewhere (TLS) net/http copies it in
// pieces of this size, as it copies what does not fit the buffer.
const writeBuffer = 32 << 10

// defaultClient is the client of an exporter not given one: that of
// http.DefaultTransport's settings with a bigger write buffer, an idle
// connection kept for each sender, and TCP connections that write
// request bodies with writev.
func defaultClient(senders int) *http.Client {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return &http.Client{}
	}
	t = t.Clone()
	t.WriteBufferSize = writeBuffer
	t.MaxIdleConnsPerHost = max(senders, 2)
	dial := (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	if t.DialContext != nil {
		dial = t.DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok && err == nil {
			return &bodyConn{tc}, nil
		}
		return c, err
	}
	return &http.Client{Transport: t}
}

// bodyConn is a TCP connection of the default client. net/http copies a
// request's body to the connection with io.Copy through an
// io.LimitedReader (after what its write buffer holds): ReadFrom sees the
// requestBody behind it and writes what is left of it with one writev,
// rather than have io.Copy copy it into 32 KB buffers and write each.
type bodyConn struct{ *net.TCPConn }

// ReadFrom writes what r has to the connection.
func (c *bodyConn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if b, ok := lr.R.(*requestBody); ok && b.len() <= lr.N {
			n, err := b.WriteTo(c.TCPConn)
			lr.N -= n
			return n, err
		}
	}
	return c.TCPConn.ReadFrom(r)
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
