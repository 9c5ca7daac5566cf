package otlp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/otlptest"
)

// idCollector is an HTTP transport that counts the log records it is
// sent by their id and pad attributes, and the bodies it cannot decode.
type idCollector struct {
	mu  sync.Mutex
	ids map[string]int
	bad int
}

func (k *idCollector) RoundTrip(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	if req.URL.Path != "/v1/logs" {
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: req}, nil
	}
	recs, err := otlptest.Decode(b, false)
	k.mu.Lock()
	if err != nil {
		k.bad++
	}
	for _, r := range recs {
		id := fmt.Sprint(r.Attrs["id"], "/", r.Attrs["pad"])
		k.ids[id]++
	}
	k.mu.Unlock()
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: req}, nil
}

// LogBuilders committing to a WithBlock exporter whose queue fills, beside
// a goroutine calling Log: every record arrives once, intact. A batch that
// took a builder's buffer while the Commit still read later runs out of
// it (a wait for room lets a sender free that batch and the buffer go to
// another producer) lost and garbled records here.
func TestBlockingCommitsKeepEveryRecord(t *testing.T) {
	k := &idCollector{ids: map[string]int{}}
	exp, err := otlp.New("http://collector.invalid:4318", otlp.WithHTTPClient(&http.Client{Transport: k}),
		otlp.WithBlock(), otlp.WithBatch(4, 1<<20, time.Hour), otlp.WithQueueSize(8), otlp.WithSenders(1))
	if err != nil {
		t.Fatal(err)
	}
	cl := &otlp.Class{Name: "a:b", Scope: otlp.Scope{Name: "s"}, Fields: []otlp.Field{{Name: "id", Kind: "uint64"}, {Name: "pad", Kind: "string"}}}
	const workers, commits, per = 4, 300, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := exp.NewLogBuilder()
			for c := range commits {
				if w == 1 {
					for i := range per {
						id := uint64(w*1_000_000 + c*per + i)
						pad := strings.Repeat(string(rune('a'+w)), 20+i)
						exp.Log(cl, 1, []ctf.Value{ctf.UintValue(id), ctf.StringValue(pad)}, 0)
					}
					continue
				}
				for i := range per {
					id := uint64(w*1_000_000 + c*per + i)
					pad := strings.Repeat(string(rune('a'+w)), 20+i)
					b.Add(cl, 1, 2, []ctf.Value{ctf.UintValue(id), ctf.StringValue(pad)}, 0)
				}
				exp.Commit(b)
			}
		}()
	}
	wg.Wait()
	if err := exp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for w := range workers {
		for c := range commits {
			for i := range per {
				id := uint64(w*1_000_000 + c*per + i)
				want[fmt.Sprint(int64(id), "/", strings.Repeat(string(rune('a'+w)), 20+i))] = 1
			}
		}
	}
	missing, dup, extra := 0, 0, 0
	for id := range want {
		switch n := k.ids[id]; {
		case n == 0:
			missing++
		case n > 1:
			dup++
		}
	}
	for id := range k.ids {
		if want[id] == 0 {
			extra++
		}
	}
	if missing+dup+extra+k.bad > 0 {
		t.Fatalf("%d records missing, %d duplicated, %d not given, %d undecodable bodies (of %d); stats %+v", missing, dup, extra, k.bad, len(want), exp.Stats())
	}
}
