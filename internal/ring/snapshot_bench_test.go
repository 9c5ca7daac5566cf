package ring

import (
	"encoding/binary"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
)

// BenchmarkSnapshotGCStop takes snapshots of an overwrite-mode buffer
// holding 32 MiB per shard while another goroutine runs the garbage
// collector in a loop, and reports how long the collector took to stop
// the world (median and 99th percentile, as the upper bounds of the
// runtime/metrics histogram buckets they fall in): a snapshot that copies
// while pinned to its P delays a stop-the-world by as long as the pinned
// copy lasts.
func BenchmarkSnapshotGCStop(b *testing.B) {
	buf := mustNew(b, Config{SubBufSize: 2 << 20, SubBufCount: 16, Overwrite: true})
	fill := func() {
		var ts uint64
		for range buf.Config().SubBufCount * buf.Config().SubBufSize / 1024 * 2 {
			if w, ok := buf.Reserve(1024); ok {
				ts++
				binary.LittleEndian.PutUint64(w.Bytes(), ts)
				buf.Commit(w)
			}
		}
	}
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(fill)
	}
	wg.Wait()
	sample := []metrics.Sample{{Name: "/sched/pauses/stopping/gc:seconds"}}
	counts := func() ([]uint64, []float64) {
		metrics.Read(sample)
		h := sample[0].Value.Float64Histogram()
		return append([]uint64(nil), h.Counts...), h.Buckets
	}
	stop := make(chan struct{})
	var gc sync.WaitGroup
	gc.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	})
	before, _ := counts()
	emit := func(Packet) error { return nil }
	b.SetBytes(int64(buf.Shards() * buf.Config().SubBufCount * buf.Config().SubBufSize))
	for b.Loop() {
		if err := buf.Snapshot(emit); err != nil {
			b.Fatal(err)
		}
	}
	close(stop)
	gc.Wait()
	after, buckets := counts()
	var total uint64
	for i := range after {
		after[i] -= before[i]
		total += after[i]
	}
	// Report the upper bound of the bucket holding the quantile.
	quantile := func(q float64) float64 {
		var n uint64
		for i, c := range after {
			if n += c; c > 0 && float64(n) >= q*float64(total) {
				return buckets[i+1]
			}
		}
		return 0
	}
	b.ReportMetric(quantile(0.5)*1e6, "p50-gc-stop-µs")
	b.ReportMetric(quantile(0.99)*1e6, "p99-gc-stop-µs")
	b.ReportMetric(float64(total)/float64(b.N), "gcs/op")
}
