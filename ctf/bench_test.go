package ctf

import (
	"encoding/binary"
	"io"
	"testing"
)

// benchClass is the benchmark's 3-field event: two int64 and a 16-byte
// string (43 bytes a record with its header).
var benchClass = EventClass{ID: 0, Name: "bench:event", Fields: []Field{{Name: "a", Type: i64}, {Name: "b", Type: i64}, {Name: "s", Type: str}}}

const benchPerPacket = 1024 // 44 KiB packets

func appendBenchRecords(b []byte, ts uint64, i int) []byte {
	for j := range benchPerPacket {
		b = AppendEventHeader(b, 0, ts+uint64(j))
		b = AppendInt(b, 64, int64(i+j))
		b = AppendInt(b, 64, -int64(i+j))
		b = AppendString(b, "0123456789abcdef")
	}
	return b
}

func reportThroughput(b *testing.B, events, bytes int) {
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(events)/s, "events/s")
	b.ReportMetric(float64(bytes)/s/(1<<20), "MiB/s")
}

// BenchmarkWritePackets measures WritePacket (validation included) to a
// file on disk, in packets of 1024 events; an op is one event. Close
// (which fsyncs) is not timed. "preencoded" rewrites only the timestamps
// of a packet encoded once; "encode" also encodes every record with the
// Append functions, as a recorder would.
func BenchmarkWritePackets(b *testing.B) {
	for _, mode := range []string{"preencoded", "encode", "trusted"} {
		encode := mode == "encode"
		write := (*Writer).WritePacket
		if mode == "trusted" {
			write = (*Writer).WriteTrustedPacket
		}
		b.Run(mode, func(b *testing.B) {
			w, err := Create(b.TempDir(), testInfo())
			if err != nil {
				b.Fatal(err)
			}
			if err := w.AddEventClass(benchClass); err != nil {
				b.Fatal(err)
			}
			recs := appendBenchRecords(nil, 0, 0)
			recSize := len(recs) / benchPerPacket
			var ts, seq uint64
			written := 0
			b.ResetTimer()
			for i := 0; i < b.N; i += benchPerPacket {
				if encode {
					recs = appendBenchRecords(recs[:0], ts, i)
				} else {
					for j := range benchPerPacket {
						binary.LittleEndian.PutUint64(recs[j*recSize+2:], ts+uint64(j))
					}
				}
				if err := write(w, 0, PacketInfo{BeginTS: ts, EndTS: ts + benchPerPacket, Seq: seq}, recs); err != nil {
					b.Fatal(err)
				}
				written += len(recs) + PacketPreambleSize
				ts += benchPerPacket + 1
				seq++
			}
			b.StopTimer()
			events := (b.N + benchPerPacket - 1) / benchPerPacket * benchPerPacket
			reportThroughput(b, events, written)
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRead measures reading (decoding every field, merging 4 streams)
// a trace of 1M 3-field events; an op is one event.
func BenchmarkRead(b *testing.B) {
	const events, streams = 1 << 20, 4
	dir := b.TempDir()
	w, err := Create(dir, testInfo())
	if err != nil {
		b.Fatal(err)
	}
	if err := w.AddEventClass(benchClass); err != nil {
		b.Fatal(err)
	}
	var recs []byte
	size := 0
	for i := 0; i < events; i += benchPerPacket {
		ts := uint64(i)
		recs = appendBenchRecords(recs[:0], ts, i)
		s := uint32(i/benchPerPacket) % streams
		if err := w.WritePacket(s, PacketInfo{BeginTS: ts, EndTS: ts + benchPerPacket, Seq: uint64(i / benchPerPacket / streams), CPU: s}, recs); err != nil {
			b.Fatal(err)
		}
		size += len(recs) + PacketPreambleSize
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var r *Reader
	var sum int64
	for i := 0; i < b.N; i++ {
		if r == nil {
			if r, err = Open(dir); err != nil {
				b.Fatal(err)
			}
		}
		ev, err := r.Next()
		if err == io.EOF {
			r.Close()
			r = nil
			i--
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		sum += ev.Fields[0].Int + int64(len(ev.Fields[2].Bytes))
	}
	b.StopTimer()
	if r != nil {
		r.Close()
	}
	if sum == 0 {
		b.Fatal("nothing read")
	}
	reportThroughput(b, b.N, int(int64(b.N)*int64(size)/events))
}
