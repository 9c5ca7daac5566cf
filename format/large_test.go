package format_test

import (
	"bytes"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tracemark/tracemark/format"
	"github.com/tracemark/tracemark/format/internal/tracetest"
)

// memWriter counts output bytes and lines and samples the heap at every
// write (the formats write in 64 KiB chunks).
type memWriter struct {
	bytes, lines int64
	peak         uint64
	last         []byte
}

func (m *memWriter) Write(p []byte) (int, error) {
	m.bytes += int64(len(p))
	m.lines += int64(bytes.Count(p, []byte("\n")))
	m.last = append(m.last[:0], p[max(0, len(p)-200):]...)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.peak = max(m.peak, ms.HeapInuse)
	return len(p), nil
}

// TestMillionEvents converts a trace of a million 3-field events to every
// format and checks that memory stays bounded: the heap in use while
// converting grows by less than 4 MiB over what it was before (the trace
// itself is 41 MiB and the outputs 104 to 193 MiB), and a conversion
// allocates less than 1 MiB in all (about 230 KB, whatever the number of
// events). With -short, 100000 events.
func TestMillionEvents(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	dir := t.TempDir()
	start := time.Now()
	size := tracetest.WriteLarge(t, dir, n, 2)
	t.Logf("wrote %d events (%.1f MiB) in %v", n, float64(size)/(1<<20), time.Since(start).Round(time.Millisecond))
	for _, to := range format.Formats() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		w := &memWriter{}
		start := time.Now()
		if err := format.Convert(dir, to, w); err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		growth := int64(w.peak) - int64(before.HeapInuse)
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("%-8s %v, %.0f events/s, %.1f MiB out, heap in use +%.2f MiB at most, %d bytes allocated",
			to, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), float64(w.bytes)/(1<<20), float64(growth)/(1<<20), allocated)
		if growth > 4<<20 {
			t.Errorf("%s: heap in use grew by %d bytes", to, growth)
		}
		if allocated > 1<<20 {
			t.Errorf("%s: %d bytes allocated for %d events", to, allocated, n)
		}
		wantLines := int64(n)
		if to == format.ChromeJSON {
			wantLines += 6 // head, process name and labels, thread name, end of array, otherData
			if !bytes.Contains(w.last, []byte(`"events":`+strconv.Itoa(n)+`,"lost_events":0}}`)) {
				t.Errorf("perfetto output ends with %q", w.last)
			}
		}
		if to != format.Perfetto && w.lines != wantLines { // protobuf has no lines
			t.Errorf("%s: %d lines, want %d", to, w.lines, wantLines)
		}
	}
	start = time.Now()
	s, err := format.Summarize(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary  %v", time.Since(start).Round(time.Millisecond))
	if s.Events != uint64(n) || s.Markers[0].Events != uint64(n) || len(s.Streams) != 2 || s.Streams[0].Events != uint64(n+1)/2 ||
		s.Duration != time.Duration(n-1) {
		t.Errorf("summary %+v", s)
	}
}
