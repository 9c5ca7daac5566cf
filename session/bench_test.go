package session_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/trace"
	"sync"
	"testing"
	"time"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

var benchRecord = marker.Define3("sessbench:record",
	marker.Int64("status"), marker.Int64("bytes"), marker.String("path"))

const benchPath = "/api/users/12345" // 16 bytes

// startBenchSession records sessbench:record with the given filter and
// drains in batches on another goroutine, every millisecond.
func startBenchSession(b *testing.B, mode session.Mode, filter string) (*session.Session, func()) {
	return startBenchSessionReader(b, mode, filter, false)
}

// startBenchSessionReader is startBenchSession whose reader, if woken is
// set, drains when Session.Wait says a sub-buffer filled, as
// TraceWriter.Run does, instead of every millisecond.
func startBenchSessionReader(b *testing.B, mode session.Mode, filter string, woken bool, opts ...session.Option) (*session.Session, func()) {
	b.Helper()
	opts = append([]session.Option{session.WithMode(mode), session.WithBufferSize(8 << 20), session.WithSubBufSize(256 << 10)}, opts...)
	s, err := session.New("bench", opts...)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Enable("sessbench:record", filter); err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if woken {
			for {
				s.Wait(done, 100*time.Millisecond)
				select {
				case <-done:
					return
				default:
				}
				_ = s.Drain(func(session.Packet) error { return nil })
			}
		}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if mode == session.Discard {
					_ = s.Drain(func(session.Packet) error { return nil })
				}
			}
		}
	}()
	return s, func() {
		close(done)
		wg.Wait()
		s.Destroy()
		st := s.Stats()
		if total := st.Recorded + st.Discarded + st.Filtered; total > 0 {
			b.ReportMetric(float64(st.Discarded)/float64(total)*100, "%lost")
		}
	}
}

func BenchmarkRecord3Fields(b *testing.B) {
	for _, mode := range []session.Mode{session.Discard, session.Overwrite} {
		b.Run(mode.String(), func(b *testing.B) {
			_, stop := startBenchSession(b, mode, "")
			defer stop()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				benchRecord.Fire(int64(i), 1234, benchPath)
			}
		})
	}
}

// BenchmarkRecord3FieldsNoContext and the BenchmarkRecord3Fields<field>
// benchmarks are the overwrite case of BenchmarkRecord3Fields (no reader
// competing for the CPU: the event's own cost) without and with context
// fields (WithEventContext), to be run together (-bench
// 'Record3Fields(NoContext|TID|PID|Procname|CPU|AllContext)') so that each
// difference is what its fields cost an event.
func BenchmarkRecord3FieldsNoContext(b *testing.B) { benchRecordContext(b) }

func BenchmarkRecord3FieldsTID(b *testing.B) { benchRecordContext(b, session.WithThreadID()) }

func BenchmarkRecord3FieldsPID(b *testing.B) {
	benchRecordContext(b, session.WithEventContext(session.ContextPID))
}

func BenchmarkRecord3FieldsProcname(b *testing.B) {
	benchRecordContext(b, session.WithEventContext(session.ContextProcname))
}

func BenchmarkRecord3FieldsCPU(b *testing.B) {
	benchRecordContext(b, session.WithEventContext(session.ContextCPU))
}

func BenchmarkRecord3FieldsAllContext(b *testing.B) {
	benchRecordContext(b, session.WithEventContext(session.ContextPID, session.ContextProcname, session.ContextCPU, session.ContextTID))
}

func benchRecordContext(b *testing.B, opts ...session.Option) {
	_, stop := startBenchSessionReader(b, session.Overwrite, "", false, opts...)
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		benchRecord.Fire(int64(i), 1234, benchPath)
	}
}

// BenchmarkRecord3FieldsWoken is the discard case of BenchmarkRecord3Fields
// with a reader woken by the writers when sub-buffers fill: what the
// recording goroutine pays for the wake-ups.
func BenchmarkRecord3FieldsWoken(b *testing.B) {
	_, stop := startBenchSessionReader(b, session.Discard, "", true)
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		benchRecord.Fire(int64(i), 1234, benchPath)
	}
}

func BenchmarkRecord3FieldsParallel(b *testing.B) {
	_, stop := startBenchSession(b, session.Overwrite, "")
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int64(0)
		for pb.Next() {
			i++
			benchRecord.Fire(i, 1234, benchPath)
		}
	})
}

func BenchmarkRecordFiltered(b *testing.B) {
	for _, tc := range []struct{ name, filter string }{
		{"rejects", `status >= 500 && path.startsWith("/api")`},
		{"accepts", `status >= 0 && path.startsWith("/api")`},
		{"size-rejects", `size(path) > 3 && status >= 500`},
		{"size-accepts", `size(path) > 3 && status >= 0`},
		// Outside the checked form: evaluated by the CEL program, in a
		// program that imports session/celfilter.
		{"cel-rejects", `string(status) != "" && status >= 500`},
		{"cel-accepts", `string(status) != "" && status >= 0`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			_, stop := startBenchSession(b, session.Overwrite, tc.filter)
			defer stop()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				benchRecord.Fire(int64(i%500), 1234, benchPath)
			}
		})
	}
}

func BenchmarkPeerSlogJSON3Attrs(b *testing.B) {
	l := slog.New(slog.NewJSONHandler(io.Discard, nil))
	b.ReportAllocs()
	for i := range b.N {
		l.LogAttrs(context.Background(), slog.LevelInfo, "", slog.Int64("status", int64(i)),
			slog.Int64("bytes", 1234), slog.String("path", benchPath))
	}
}

func BenchmarkPeerRuntimeTraceLog(b *testing.B) {
	f, err := os.CreateTemp(b.TempDir(), "trace")
	if err != nil {
		b.Fatal(err)
	}
	if err := trace.Start(f); err != nil {
		b.Skip("runtime/trace already active:", err)
	}
	defer trace.Stop()
	ctx := context.Background()
	b.ReportAllocs()
	for range b.N {
		trace.Log(ctx, "sessbench", benchPath)
	}
}

// BenchmarkDrainFresh is the reader's cost per record (ns/op) of draining
// records that a goroutine on another thread, hence usually another core,
// has just written: the cache misses of that hand-over are most of what a
// drain costs at high rates. Each round writes 64 KiB of 3-field events
// (8 MiB of buffer, 256 KiB sub-buffers) with the timer stopped, then
// drains them.
func BenchmarkDrainFresh(b *testing.B) {
	s, err := session.New("drainbench", session.WithBufferSize(8<<20), session.WithSubBufSize(256<<10))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Destroy()
	if _, err := s.Enable("sessbench:record", ""); err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	const perRound = 64 << 10 / 37 // records of 37 bytes in 64 KiB
	fill, filled := make(chan int), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		for n := range fill {
			for i := range n {
				benchRecord.Fire(int64(i), 1234, benchPath)
			}
			filled <- struct{}{}
		}
	}()
	defer close(fill)
	var got int
	emit := func(p session.Packet) error { got += p.Events; return nil }
	b.ResetTimer()
	for done := 0; done < b.N; done += perRound {
		b.StopTimer()
		fill <- perRound
		<-filled
		b.StartTimer()
		if err := s.Drain(emit); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if st := s.Stats(); st.Discarded > 0 || got == 0 {
		b.Fatalf("drained %d records, %d discarded", got, st.Discarded)
	}
}
