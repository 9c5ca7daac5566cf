package otlp_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
)

// collector stands in for an OpenTelemetry collector's OTLP/HTTP
// receiver: it answers every export and counts the requests of each
// signal.
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	requests map[string]int
}

func newCollector() *collector {
	c := &collector{requests: map[string]int{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		c.mu.Lock()
		c.requests[r.URL.Path]++
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	return c
}

func (c *collector) paths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []string
	for p := range c.requests {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// An exporter sends events of a class, as log records, and spans; Close
// sends what is left and Stats says where every event went.
func Example() {
	col := newCollector()
	defer col.Close()

	res, err := otlp.ProcessResource(otlp.Process{PID: 1234, Executable: "/usr/bin/shop", Host: "web-1"})
	if err != nil {
		log.Fatal(err)
	}
	exp, err := otlp.New(col.URL, otlp.WithResource(res...))
	if err != nil {
		log.Fatal(err)
	}
	done := &otlp.Class{
		Name:   "http:request_done",
		Fields: []otlp.Field{{Name: "status", Kind: "int32"}, {Name: "path", Kind: "string"}, {Name: "latency", Kind: "duration"}},
		Scope:  otlp.Scope{Name: "example.com/shop", Version: "v1.4.0"},
	}
	now := time.Now().UnixNano()
	exp.Log(done, now, []ctf.Value{ctf.IntValue(200), ctf.StringValue("/cart"), ctf.IntValue(1_500_000)}, 0)
	exp.Log(done, now+1000, []ctf.Value{ctf.IntValue(404), ctf.StringValue("/nope"), ctf.IntValue(90_000)}, 0)
	exp.Span(&otlp.SpanData{
		Name: "checkout", Scope: done.Scope, TraceID: [16]byte{1}, SpanID: [8]byte{2},
		StartNS: now, EndNS: now + 2_000_000, Attributes: []otlp.Attribute{{Key: "items", Value: int64(3)}},
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exp.Close(ctx); err != nil {
		log.Fatal(err)
	}
	st := exp.Stats()
	fmt.Printf("%d events (%d spans): %d exported, %d lost\n", st.Events, st.Spans, st.Exported, st.Lost())
	fmt.Println(col.paths())
	// Output:
	// 3 events (1 spans): 3 exported, 0 lost
	// [/v1/logs /v1/traces]
}

// Counts go out as metrics: here a cumulative count of requests by
// status.
func ExampleExporter_ExportMetrics() {
	col := newCollector()
	defer col.Close()
	exp, err := otlp.New(col.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer exp.Close(context.Background())

	start := time.Now().Add(-time.Minute).UnixNano()
	now := time.Now().UnixNano()
	err = exp.ExportMetrics(context.Background(), []otlp.Metric{{
		Name: "http.requests", Unit: "{request}", Scope: otlp.Scope{Name: "tracemark"},
		Sum: &otlp.Sum{Monotonic: true, Points: []otlp.NumberPoint{
			{Attributes: []otlp.Attribute{{Key: "status", Value: int64(200)}}, StartNS: start, TimeNS: now, Value: 1042},
			{Attributes: []otlp.Attribute{{Key: "status", Value: int64(404)}}, StartNS: start, TimeNS: now, Value: 7},
		}},
	}})
	fmt.Println(err, col.paths())
	// Output: <nil> [/v1/metrics]
}

// WithEnv reads the OpenTelemetry variables; what it ignores, such as a
// compression it does not know, is in Warnings.
func ExampleWithEnv() {
	col := newCollector()
	defer col.Close()
	// As an operator would set them:
	//	OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318
	//	OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=zstd
	// here in the test's own environment.
	restore := setenv(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":         col.URL,
		"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "zstd",
	})
	defer restore()

	exp, err := otlp.New("", otlp.WithEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer exp.Close(context.Background())
	for _, w := range exp.Warnings() {
		fmt.Println("warning:", w)
	}
	fmt.Println("timeout", exp.Timeout())
	// Output:
	// warning: OTEL_EXPORTER_OTLP_LOGS_COMPRESSION="zstd" is not gzip or none: ignored
	// timeout 10s
}

// setenv sets the variables and returns what puts them back.
func setenv(vars map[string]string) (restore func()) {
	old := map[string]*string{}
	for k, v := range vars {
		if o, ok := os.LookupEnv(k); ok {
			old[k] = &o
		} else {
			old[k] = nil
		}
		os.Setenv(k, v)
	}
	return func() {
		for k, o := range old {
			if o == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *o)
			}
		}
	}
}

// The records of a CTF packet go out without being decoded into values:
// a CTFEncoder encodes a run of records of one class straight from the
// packet's bytes, here three records of id 1 and one of another class,
// where the run stops.
func ExampleCTFEncoder_AddRecords() {
	col := newCollector()
	defer col.Close()
	exp, err := otlp.New(col.URL)
	if err != nil {
		log.Fatal(err)
	}
	ec := ctf.EventClass{ID: 1, Name: "http:request_done", Fields: []ctf.Field{
		{Name: "status", Type: ctf.FieldType{Kind: ctf.Int, Bits: 32}},
		{Name: "path", Type: ctf.FieldType{Kind: ctf.String}},
	}}
	other := ctf.EventClass{ID: 2, Name: "http:other"}
	var packet []byte
	for i, path := range []string{"/cart", "/pay", "/done"} {
		packet, err = ctf.AppendRecord(packet, &ec, uint64(i)*1000, []ctf.Value{ctf.IntValue(200), ctf.StringValue(path)}, 0)
		if err != nil {
			log.Fatal(err)
		}
	}
	if packet, err = ctf.AppendRecord(packet, &other, 5000, nil, 0); err != nil {
		log.Fatal(err)
	}

	done := &otlp.Class{
		Name:   ec.Name,
		Fields: []otlp.Field{{Name: "status", Kind: "int32"}, {Name: "path", Kind: "string"}},
		Scope:  otlp.Scope{Name: "example.com/shop"},
	}
	b := exp.NewLogBuilder()
	enc := b.CTFEncoder(done, []ctf.FieldType{ec.Fields[0].Type, ec.Fields[1].Type})
	epoch := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC).UnixNano() // the time of timestamp 0
	k, n, err := enc.AddRecords(packet, &otlp.CTFRecords{ID: ec.ID, Epoch: epoch, Observed: time.Now().UnixNano()})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d records in %d bytes, then a record of id %d\n", k, n, packet[n])
	exp.Commit(b)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exp.Close(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d exported\n", exp.Stats().Exported)
	// Output:
	// 3 records in 59 bytes, then a record of id 2
	// 3 exported
}
