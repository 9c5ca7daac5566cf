package ring

import (
	"encoding/binary"
	"testing"
	"time"
)

// benchConfig never drops on the write path: overwrite mode with no reader
// always finds a sub-buffer to reuse.
func benchConfig() Config {
	return Config{SubBufSize: 1 << 20, SubBufCount: 4, Overwrite: true}
}

// BenchmarkReserveCommit measures the fast path for a 32-byte record on one
// goroutine, sub-buffer switches included.
func BenchmarkReserveCommit(b *testing.B) {
	buf := mustNew(b, benchConfig())
	b.ReportAllocs()
	var ts uint64
	for b.Loop() {
		if w, ok := buf.Reserve(32); ok {
			ts++
			binary.LittleEndian.PutUint64(w.Bytes(), ts)
			buf.Commit(w)
		}
	}
	if st := buf.Stats(); st.Dropped != 0 {
		b.Fatalf("dropped %d records", st.Dropped)
	}
}

// BenchmarkReserveCommitParallel measures the fast path from GOMAXPROCS
// goroutines; with one shard per P it should scale with -cpu.
func BenchmarkReserveCommitParallel(b *testing.B) {
	buf := mustNew(b, benchConfig())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ts uint64
		for pb.Next() {
			if w, ok := buf.Reserve(32); ok {
				ts++
				binary.LittleEndian.PutUint64(w.Bytes(), ts)
				buf.Commit(w)
			}
		}
	})
}

// BenchmarkDrain measures Drain throughput on 1 MiB of 32-byte records per
// iteration: "zerocopy" hands out the ring's bytes, "copy" also copies them
// out as a consumer writing packets would. ns/op includes refilling the
// ring; the drain-MB/s metric times Drain alone. (Stopping the benchmark
// timer instead would make the framework run millions of untimed fills.)
func BenchmarkDrain(b *testing.B) {
	const total = 1 << 20
	for _, mode := range []string{"zerocopy", "copy"} {
		b.Run(mode, func(b *testing.B) {
			buf := mustNew(b, Config{SubBufSize: 64 << 10, SubBufCount: 32})
			out := make([]byte, 0, 2*total)
			emit := func(p Packet) error {
				if mode == "copy" {
					out = append(out[:0], p.Data...)
				}
				return nil
			}
			b.ReportAllocs()
			var drainTime time.Duration
			var drained int64
			for b.Loop() {
				for i := range total / 32 {
					if w, ok := buf.Reserve(32); ok {
						binary.LittleEndian.PutUint64(w.Bytes(), uint64(i))
						buf.Commit(w)
					}
				}
				start := time.Now()
				if err := buf.Drain(emit); err != nil {
					b.Fatal(err)
				}
				drainTime += time.Since(start)
				drained += total
			}
			b.ReportMetric(float64(drained)/drainTime.Seconds()/1e6, "drain-MB/s")
			if st := buf.Stats(); st.Dropped != 0 || st.Consumed != st.Records {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}
