package otelcol

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
)

// request is an export request as the exporter sent it.
type request struct {
	body []byte
	gzip bool
}

// exportedRequests returns the requests that tracemark's exporter sends
// for n events of the load program's marker (load:event, an int32, an
// int64 and a string), in full batches.
func exportedRequests(b *testing.B, n int, comp string) []request {
	var mu sync.Mutex
	var reqs []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, request{body, r.Header.Get("Content-Encoding") == "gzip"})
		mu.Unlock()
	}))
	defer srv.Close()
	e, err := otlp.New(srv.URL, otlp.WithHTTPClient(srv.Client()), otlp.WithCompression(comp), otlp.WithBlock())
	if err != nil {
		b.Fatal(err)
	}
	c := otlp.Class{Name: "load:event", Fields: []otlp.Field{{Name: "i", Kind: "int32"}, {Name: "v", Kind: "int64"}, {Name: "s", Kind: "string"}},
		Scope: otlp.Scope{Name: "github.com/tracemark/tracemark"}}
	now := time.Now().UnixNano()
	for i := range n {
		e.LogAt(&c, now+int64(i), now, []ctf.Value{ctf.IntValue(int64(i)), ctf.IntValue(int64(i) * 1000), ctf.StringValue("hello")}, 0)
	}
	if err := e.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	return reqs
}

// cpuTime returns the CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCollectorIngest measures how many log records per second the
// collector's own OTLP/HTTP receiver (otlpreceiver, with a consumer that
// counts them) ingests from the requests tracemark's exporter sends: the
// requests are made once, then posted again and again, one at a time, so
// that the receiver's work dominates. Run with -cpu 1 for one core.
// records/s is what the receiver handed to its consumer per second of
// wall time; cpu-ns/record the CPU time of the whole process (receiver
// and the client posting) per record, which the machine's load does not
// change much.
func BenchmarkCollectorIngest(b *testing.B) {
	for _, comp := range []string{otlp.CompressionNone, otlp.CompressionGzip} {
		b.Run(comp, func(b *testing.B) {
			reqs := exportedRequests(b, 16*otlp.DefaultBatchSize, comp)
			s := &sink{countOnly: true}
			col := startCollector(b, freeAddr(b), s)
			url := col.url() + "/v1/logs"
			client := &http.Client{}
			post := func(r request) {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(r.body))
				req.Header.Set("Content-Type", "application/x-protobuf")
				if r.gzip {
					req.Header.Set("Content-Encoding", "gzip")
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("the receiver answered %s", resp.Status)
				}
			}
			post(reqs[0]) // the connection made
			s.counted.Store(0)
			cpu0 := cpuTime()
			b.ResetTimer()
			n := 0
			for b.Loop() {
				post(reqs[n%len(reqs)])
				n++
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			got := s.counted.Load()
			if got == 0 {
				b.Fatal("the receiver counted no record")
			}
			b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(got), "cpu-ns/record")
			b.ReportMetric(float64(got)/float64(n), "records/request")
		})
	}
}
