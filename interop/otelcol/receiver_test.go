package otelcol

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// sink is the consumer behind the collector's receiver: it keeps what
// arrives, or refuses it (the receiver then answers 503) while refuse
// says so.
type sink struct {
	mu      sync.Mutex
	logs    []plog.Logs
	traces  []ptrace.Traces
	metrics []pmetric.Metrics
	// refuse, if set, is asked before each export; true refuses it.
	refuse  func() bool
	refused int
	// countOnly makes the sink count the log records, not keep them
	// (benchmarks).
	countOnly bool
	counted   atomic.Uint64
}

var errBusy = errors.New("sink busy")

func (s *sink) refusing() bool {
	if s.refuse != nil && s.refuse() {
		s.refused++
		return true
	}
	return false
}

func (s *sink) consumeLogs(_ context.Context, ld plog.Logs) error {
	if s.countOnly {
		s.counted.Add(uint64(ld.LogRecordCount()))
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refusing() {
		return errBusy
	}
	c := plog.NewLogs()
	ld.CopyTo(c)
	s.logs = append(s.logs, c)
	return nil
}

func (s *sink) consumeTraces(_ context.Context, td ptrace.Traces) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refusing() {
		return errBusy
	}
	c := ptrace.NewTraces()
	td.CopyTo(c)
	s.traces = append(s.traces, c)
	return nil
}

func (s *sink) consumeMetrics(_ context.Context, md pmetric.Metrics) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := pmetric.NewMetrics()
	md.CopyTo(c)
	s.metrics = append(s.metrics, c)
	return nil
}

// logRecords returns every log record received, with its resource and
// scope.
type logRec struct {
	res   plog.ResourceLogs
	scope plog.ScopeLogs
	rec   plog.LogRecord
}

func (s *sink) logRecords() []logRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []logRec
	for _, ld := range s.logs {
		for i := range ld.ResourceLogs().Len() {
			rl := ld.ResourceLogs().At(i)
			for j := range rl.ScopeLogs().Len() {
				sl := rl.ScopeLogs().At(j)
				for k := range sl.LogRecords().Len() {
					out = append(out, logRec{rl, sl, sl.LogRecords().At(k)})
				}
			}
		}
	}
	return out
}

// collector is the collector's OTLP receiver, HTTP only, in-process.
type collector struct {
	t    testing.TB
	addr string
	sink *sink
	stop []func()
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startCollector starts the collector's OTLP/HTTP receiver on addr.
func startCollector(t testing.TB, addr string, s *sink) *collector {
	t.Helper()
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = addr
	set := receivertest.NewNopSettings(f.Type())
	ctx := context.Background()
	lc, _ := consumer.NewLogs(s.consumeLogs)
	tc, _ := consumer.NewTraces(s.consumeTraces)
	mc, _ := consumer.NewMetrics(s.consumeMetrics)
	lr, err := f.CreateLogs(ctx, set, cfg, lc)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := f.CreateTraces(ctx, set, cfg, tc)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := f.CreateMetrics(ctx, set, cfg, mc)
	if err != nil {
		t.Fatal(err)
	}
	// The three share one receiver (and one HTTP server): starting one
	// starts it.
	if err := lr.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	c := &collector{t: t, addr: addr, sink: s}
	c.stop = append(c.stop, func() {
		lr.Shutdown(ctx)
		tr.Shutdown(ctx)
		mr.Shutdown(ctx)
	})
	t.Cleanup(c.shutdown)
	return c
}

func (c *collector) shutdown() {
	for _, f := range c.stop {
		f()
	}
	c.stop = nil
}

func (c *collector) url() string { return "http://" + c.addr }
