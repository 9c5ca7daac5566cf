package ctf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// item is the expected content of one Event.
type item struct {
	class                  int // ID, or -1 for a notice
	stream, cpu            uint32
	cycles                 uint64
	vals                   []Value
	trunc                  uint8
	discarded, lost, endTS uint64
}

func (it item) String() string {
	return fmt.Sprintf("{class %d stream %d cpu %d ts %d vals %v trunc %d discarded %d lost %d end %d}",
		it.class, it.stream, it.cpu, it.cycles, it.vals, it.trunc, it.discarded, it.lost, it.endTS)
}

func itemOf(ev Event) item {
	it := item{class: -1, stream: ev.Stream, cpu: ev.CPU, cycles: ev.Cycles, vals: ev.Fields, trunc: ev.Truncated,
		discarded: ev.Discarded, lost: ev.LostPackets, endTS: ev.EndCycles}
	if ev.Class != nil {
		it.class = int(ev.Class.ID)
	}
	if len(it.vals) == 0 {
		it.vals = nil
	}
	return it
}

func (it item) equal(o item) bool {
	if it.class != o.class || it.stream != o.stream || it.cpu != o.cpu || it.cycles != o.cycles || it.trunc != o.trunc ||
		it.discarded != o.discarded || it.lost != o.lost || it.endTS != o.endTS || len(it.vals) != len(o.vals) {
		return false
	}
	for i := range it.vals {
		if !it.vals[i].Equal(o.vals[i]) {
			return false
		}
	}
	return true
}

func checkItems(t *testing.T, got []Event, want []item) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("read %d items, want %d", len(got), len(want))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		if g := itemOf(got[i]); !g.equal(want[i]) {
			t.Errorf("item %d:\n got %v\nwant %v", i, g, want[i])
		}
	}
}

// packet is one WritePacket call of a round-trip case.
type packet struct {
	stream uint32
	info   PacketInfo
	recs   []rec
}

type roundTrip struct {
	name    string
	info    TraceInfo
	classes []EventClass
	packets []packet
	want    []item // nil: derived from the packets (events only, in order)
}

func (c roundTrip) wantItems() []item {
	if c.want != nil {
		return c.want
	}
	var out []item
	for _, p := range c.packets {
		for _, r := range p.recs {
			out = append(out, item{class: int(c.classes[r.class].ID), stream: p.stream, cpu: p.info.CPU, cycles: r.ts, vals: r.vals, trunc: r.trunc})
		}
	}
	return out
}

func roundTripCases() []roundTrip {
	interop := roundTrip{name: "every field type, several streams", info: testInfo(), classes: testClasses}
	for _, p := range testPackets {
		pk := packet{stream: p.stream, info: p.info}
		for _, i := range p.recs {
			pk.recs = append(pk.recs, testRecords[i])
		}
		interop.packets = append(interop.packets, pk)
	}
	// Events in timestamp order, with the notices of stream 1 (4 events
	// discarded between its packets) and stream 5 (packets 1 and 2 lost).
	for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, -1, 9, -2, 10, 11, 12} {
		switch i {
		case -1:
			interop.want = append(interop.want, item{class: -1, stream: 1, cpu: 1, cycles: 185, discarded: 4, endTS: 320})
		case -2:
			interop.want = append(interop.want, item{class: -1, stream: 5, cpu: 5, cycles: 195, lost: 2, endTS: 410})
		default:
			r := testRecords[i]
			cpu := r.stream
			interop.want = append(interop.want, item{class: int(testClasses[r.class].ID), stream: r.stream, cpu: cpu, cycles: r.ts, vals: r.vals, trunc: r.trunc})
		}
	}

	small := []EventClass{{ID: 3, Name: "small", Fields: []Field{{Name: "v", Type: u32}}}}
	var manySmall []packet
	for i := range 3000 {
		// Record sizes vary so that packets end at every offset of a
		// page, and the writer has to pad some of them.
		var recs []rec
		for j := range 1 + i%5 {
			recs = append(recs, rec{class: 0, ts: uint64(i*10 + j), vals: []Value{UintValue(uint64(i))}})
		}
		manySmall = append(manySmall, packet{stream: uint32(i % 2), info: PacketInfo{BeginTS: uint64(i * 10), EndTS: uint64(i*10 + 9), Seq: uint64(i / 2), CPU: uint32(i % 2)}, recs: recs})
	}
	manyWant := []item{}
	for _, p := range manySmall {
		for _, r := range p.recs {
			manyWant = append(manyWant, item{class: 3, stream: p.stream, cpu: p.info.CPU, cycles: r.ts, vals: r.vals})
		}
	}

	blobClass := []EventClass{{ID: 1, Name: "blob", Fields: []Field{{Name: "b", Type: byt}, {Name: "s", Type: str}}}}
	// Larger than the largest growth step. (Big payloads are strings:
	// Babeltrace makes an object of every element of a byte sequence.)
	bigStr := strings.Repeat("x", 9<<20)
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<14)

	ties := []EventClass{{ID: 9, Name: "tie"}}
	var tiePackets []packet
	var tieWant []item
	for s := uint32(0); s < 12; s++ {
		tiePackets = append(tiePackets, packet{stream: 11 - s, info: PacketInfo{BeginTS: 5, EndTS: 6, CPU: 11 - s},
			recs: []rec{{class: 0, ts: 5}, {class: 0, ts: 6}}})
	}
	for _, ts := range []uint64{5, 6} {
		for s := uint32(0); s < 12; s++ {
			tieWant = append(tieWant, item{class: 9, stream: s, cpu: s, cycles: ts})
		}
	}

	msClock := TraceInfo{Clock: Clock{Name: "ms", Frequency: 1000, OffsetSeconds: 100, Offset: 1500}}
	return []roundTrip{
		interop,
		{name: "many small packets, padded to keep headers within a page", info: testInfo(), classes: small, packets: manySmall, want: manyWant},
		{name: "packets larger than the growth step", info: testInfo(), classes: blobClass, packets: []packet{
			{0, PacketInfo{BeginTS: 1, EndTS: 2}, []rec{{class: 0, ts: 1, vals: []Value{BytesValue(blob), StringValue(bigStr)}}}},
			{0, PacketInfo{BeginTS: 3, EndTS: 4, Seq: 1}, []rec{{class: 0, ts: 4, vals: []Value{BytesValue(nil), StringValue("")}}}},
			{0, PacketInfo{BeginTS: 5, EndTS: 6, Seq: 2}, []rec{{class: 0, ts: 5, vals: []Value{BytesValue(blob[:100]), StringValue(bigStr[:5<<20])}}}},
		}},
		{name: "empty packets and discarded events", info: testInfo(), classes: small, packets: []packet{
			{2, PacketInfo{BeginTS: 10, EndTS: 20, Discarded: 3, CPU: 2}, nil},
			{2, PacketInfo{BeginTS: 20, EndTS: 30, Seq: 1, Discarded: 3, CPU: 2}, []rec{{class: 0, ts: 25, vals: []Value{UintValue(1)}}}},
			{2, PacketInfo{BeginTS: 30, EndTS: 40, Seq: 5, Discarded: 10, CPU: 2}, nil},
			{2, PacketInfo{BeginTS: 40, EndTS: 50, Seq: 6, Discarded: 10, CPU: 2}, nil},
		}, want: []item{
			{class: -1, stream: 2, cpu: 2, cycles: 10, discarded: 3, endTS: 20},
			{class: 3, stream: 2, cpu: 2, cycles: 25, vals: []Value{UintValue(1)}},
			{class: -1, stream: 2, cpu: 2, cycles: 30, discarded: 7, lost: 3, endTS: 40},
		}},
		{name: "equal timestamps merge in stream order", info: testInfo(), classes: ties, packets: tiePackets, want: tieWant},
		{name: "millisecond clock", info: msClock, classes: small, packets: []packet{
			{0, PacketInfo{BeginTS: 0, EndTS: math.MaxInt32}, []rec{
				{class: 0, ts: 0, vals: []Value{UintValue(0)}}, {class: 0, ts: 1, vals: []Value{UintValue(math.MaxUint32)}},
				{class: 0, ts: math.MaxInt32, vals: []Value{UintValue(7)}}}},
		}},
	}
}

func writeRoundTrip(t *testing.T, dir string, c roundTrip, close bool) {
	t.Helper()
	w, err := Create(dir, c.info)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddEventClasses(c.classes); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, p := range c.packets {
		b = b[:0]
		for _, r := range p.recs {
			if b, err = AppendRecord(b, &c.classes[r.class], r.ts, r.vals, r.trunc); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WritePacket(p.stream, p.info, b); err != nil {
			t.Fatal(err)
		}
	}
	if close {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRoundTrip checks that the Reader returns exactly what the Writer
// wrote, closed or not, and that the trace description survives.
func TestRoundTrip(t *testing.T) {
	for _, c := range roundTripCases() {
		for _, closed := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/closed=%v", c.name, closed), func(t *testing.T) {
				dir := t.TempDir()
				writeRoundTrip(t, dir, c, closed)
				evs := readAll(t, dir)
				checkItems(t, evs, c.wantItems())
				if haveBabeltrace {
					var want counts
					for _, ev := range evs {
						switch {
						case ev.Class != nil:
							want.events++
						case ev.Discarded > 0 && ev.LostPackets > 0:
							want.discardedEvents++
							want.discardedPackets++
						case ev.Discarded > 0:
							want.discardedEvents++
						default:
							want.discardedPackets++
						}
					}
					if got := babeltraceCount(t, dir); got != want {
						t.Errorf("babeltrace counted %+v, Reader %+v", got, want)
					}
				}

				r, err := Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				info := r.Info()
				if info.UUID == ([16]byte{}) || info.Clock.UUID == ([16]byte{}) {
					t.Errorf("zero UUIDs in %+v", info)
				}
				wantInfo := c.info
				if wantInfo.UUID != ([16]byte{}) && info.UUID != wantInfo.UUID {
					t.Errorf("UUID %x, want %x", info.UUID, wantInfo.UUID)
				}
				wantInfo.Clock.UUID = info.Clock.UUID
				if info.Clock != wantInfo.Clock {
					t.Errorf("clock %+v, want %+v", info.Clock, wantInfo.Clock)
				}
				for k, v := range wantInfo.Env {
					if info.Env[k] != v {
						t.Errorf("env %s = %q, want %q", k, info.Env[k], v)
					}
				}
				if info.Env["tracer_name"] != "tracemark" {
					t.Errorf("tracer_name = %q", info.Env["tracer_name"])
				}
				got := r.Classes()
				if len(got) != len(c.classes) {
					t.Fatalf("%d classes, want %d", len(got), len(c.classes))
				}
				for i := range got {
					if !got[i].equal(&c.classes[i]) {
						t.Errorf("class %+v, want %+v", got[i], c.classes[i])
					}
				}
				for _, ev := range evs {
					if want, ok := r.conv.toNS(ev.Cycles); !ok || ev.Time != want {
						t.Fatalf("event at %d cycles: time %d, want %d", ev.Cycles, ev.Time, want)
					}
				}
			})
		}
	}
}

// TestClockConversion checks the cycle to nanosecond conversion against
// hand-computed values.
func TestClockConversion(t *testing.T) {
	tests := []struct {
		clock  Clock
		cycles uint64
		want   int64
		ok     bool
	}{
		{Clock{Frequency: 1e9}, 123, 123, true},
		{Clock{Frequency: 1e9, OffsetSeconds: 10, Offset: 5}, 7, 10e9 + 12, true},
		{Clock{Frequency: 1000, OffsetSeconds: 100, Offset: 1500}, 1, 101_501_000_000, true},
		{Clock{Frequency: 1000, OffsetSeconds: -5}, 2500, -2_500_000_000, true},
		{Clock{Frequency: 1e9, OffsetSeconds: 1}, math.MaxUint64, 0, false},
		{Clock{Frequency: 1e9, OffsetSeconds: math.MaxInt64 / int64(1e9)}, 0, 0, false},
		{Clock{Frequency: 1}, 1 << 40, 0, false},
	}
	for _, tt := range tests {
		got, ok := newClockConv(&tt.clock).toNS(tt.cycles)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("%+v: %d cycles = %d, %v; want %d, %v", tt.clock, tt.cycles, got, ok, tt.want, tt.ok)
		}
	}
}

// TestPaddingAndTail checks the writer's file invariants: before Close,
// every file is a sequence of packets ending with an empty tail packet and
// no packet header crosses a page boundary; after Close, the tail is gone.
func TestPaddingAndTail(t *testing.T) {
	c := roundTripCases()[1] // many small packets
	for _, closed := range []bool{false, true} {
		dir := t.TempDir()
		writeRoundTrip(t, dir, c, closed)
		padded := 0
		for _, name := range []string{"channel0_0", "channel0_1"} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			var off, last, lastContent uint64
			n := 0
			for off < uint64(len(data)) {
				if off/pageSize != (off+PacketPreambleSize-1)/pageSize {
					t.Fatalf("%s: packet header at %d crosses a page boundary", name, off)
				}
				content := binary.LittleEndian.Uint64(data[off+offContent:]) / 8
				size := binary.LittleEndian.Uint64(data[off+offPktSize:]) / 8
				if size != content {
					padded++
					if size-content >= PacketPreambleSize && off+size != uint64(len(data)) {
						t.Errorf("%s: packet at %d padded by %d bytes", name, off, size-content)
					}
				}
				last, lastContent = off, content
				off += size
				n++
			}
			if off != uint64(len(data)) {
				t.Fatalf("%s: packets end at %d, file at %d", name, off, len(data))
			}
			tail := lastContent == PacketPreambleSize
			if tail == closed {
				t.Errorf("%s closed=%v: last packet at %d has content %d (tail packet present: %v)", name, closed, last, lastContent, tail)
			}
			if want := 1500 + map[bool]int{true: 0, false: 1}[closed]; n != want {
				t.Errorf("%s: %d packets, want %d", name, n, want)
			}
		}
		if padded == 0 {
			t.Error("no packet was padded: the page-boundary path is not exercised")
		}
	}
}

// corruption is one way to damage the trace written by writeTestTrace.
type corruption struct {
	name   string
	file   string // file damaged
	mutate func(t *testing.T, data []byte) []byte
	is     error  // error the read must match
	offset int64  // offset the CorruptError must name, -1 if not a CorruptError
	reason string // text the error must contain
}

func put16(off int, v uint16) func(*testing.T, []byte) []byte {
	return func(_ *testing.T, d []byte) []byte { binary.LittleEndian.PutUint16(d[off:], v); return d }
}

func put32(off int, v uint32) func(*testing.T, []byte) []byte {
	return func(_ *testing.T, d []byte) []byte { binary.LittleEndian.PutUint32(d[off:], v); return d }
}

func put64(off int, v uint64) func(*testing.T, []byte) []byte {
	return func(_ *testing.T, d []byte) []byte { binary.LittleEndian.PutUint64(d[off:], v); return d }
}

func cut(n int) func(*testing.T, []byte) []byte {
	return func(_ *testing.T, d []byte) []byte { return d[:n] }
}

func replace(old, new string) func(*testing.T, []byte) []byte {
	return func(t *testing.T, d []byte) []byte {
		if !bytes.Contains(d, []byte(old)) {
			t.Fatalf("%q not found", old)
		}
		return bytes.Replace(d, []byte(old), []byte(new), 1)
	}
}

func corruptions(t *testing.T) []corruption {
	// Layout of channel0_0's first packet: records 0, 2, 4, 7, 10.
	p0 := testPackets[0].recs
	recOff := func(i int) int { return PacketPreambleSize + len(encodeRecords(t, p0[:i])) }
	p0Size := recOff(len(p0))
	path := testRecords[7].vals[1].Bytes
	bodyLen := recOff(3) + EventHeaderSize + len("GET") + 1 + len(path) + 1
	const s0 = "channel0_0"
	return []corruption{
		{"bad magic", s0, put32(0, 0xdeadbeef), ErrCorrupt, 0, "bad packet magic 0xdeadbeef"},
		{"bad uuid", s0, put32(4, 0), ErrCorrupt, 4, "differs from the trace UUID"},
		{"bad stream class", s0, put32(20, 1), ErrCorrupt, 20, "stream_id 1"},
		{"truncated first header", s0, cut(40), ErrCorrupt, 0, "truncated packet header: 40 bytes left"},
		{"truncated second header", s0, cut(p0Size + 10), ErrCorrupt, int64(p0Size), "truncated packet header: 10 bytes left"},
		{"truncated packet", s0, cut(200), ErrCorrupt, offPktSize, "exceeds the 200 bytes left in the file"},
		{"content larger than packet", s0, put64(offContent, uint64(p0Size+1)*8), ErrCorrupt, offContent, "exceeds packet_size"},
		{"content smaller than header", s0, put64(offContent, 8), ErrCorrupt, offContent, "smaller than the packet header"},
		{"content not whole bytes", s0, put64(offContent, uint64(p0Size)*8-3), ErrCorrupt, offContent, "not a whole number of bytes"},
		{"begin after end", s0, put64(offTSBegin, 1000), ErrCorrupt, offTSBegin, "timestamp_begin 1000 > timestamp_end 205"},
		{"unknown event id", s0, put16(recOff(0), 99), ErrCorrupt, int64(recOff(0)), "unknown event class id 99"},
		{"sequence length past end", s0, put32(bodyLen, 0xFFFFFF00), ErrCorrupt, int64(bodyLen), "sequence length 4294967040 exceeds"},
		{"unterminated string", s0, put64(offContent, uint64(recOff(3)+EventHeaderSize+2)*8), ErrCorrupt, int64(recOff(3) + EventHeaderSize), "string not terminated"},
		{"truncated event header", s0, put64(offContent, uint64(recOff(1)+5)*8), ErrCorrupt, int64(recOff(1)), "truncated event header"},
		{"truncated integer", s0, put64(offContent, uint64(recOff(1)+EventHeaderSize+2)*8), ErrCorrupt, int64(recOff(1) + EventHeaderSize + 1), "truncated uint16: 1 bytes left"},
		{"timestamp going backwards", s0, put64(recOff(1)+2, 95), ErrCorrupt, int64(recOff(1) + 2), "before the previous one"},
		{"timestamp outside packet", s0, put64(recOff(0)+2, 80), ErrCorrupt, int64(recOff(0) + 2), "outside its packet's range"},
		{"sequence number not increasing", s0, put64(p0Size+offSeq, 0), ErrCorrupt, int64(p0Size + offSeq), "packet_seq_num 0 does not follow 0"},
		{"discarded count decreasing", "channel0_1", put64(offDiscard, 10), ErrCorrupt, -2, "events_discarded 4 decreased from 10"},
		{"metadata version", "metadata", replace("minor = 8;", "minor = 9;"), ErrMetadata, -1, "trace version 1.9"},
		{"metadata truncated", "metadata", func(_ *testing.T, d []byte) []byte { return d[:len(d)/2] }, ErrMetadata, -1, "line"},
		{"metadata unknown type", "metadata", replace("int64_t _d;", "int128_t _d;"), ErrMetadata, -1, `unknown type "int128_t"`},
		{"metadata unaligned integer", "metadata", replace("size = 16; align = 8; signed = true;", "size = 16; align = 16; signed = true;"), ErrMetadata, -1, "align = 16"},
		{"metadata packet context", "metadata", replace("uint64_t packet_seq_num;", "uint32_t packet_seq_num;"), ErrMetadata, -1, "packet_seq_num"},
		{"metadata garbage", "metadata", func(_ *testing.T, d []byte) []byte { return append(d, "\nevent { name = @; };\n"...) }, ErrMetadata, -1, "unexpected character '@'"},
		{"not CTF", "metadata", func(*testing.T, []byte) []byte { return []byte("hello") }, ErrMetadata, -1, "not CTF 1.8"},
		{"metadata deeply nested", "metadata", func(_ *testing.T, d []byte) []byte {
			return append(d, "\nevent { name = \"n\"; id = 9; fields := "+strings.Repeat("struct { ", 1<<20)+"};\n"...)
		}, ErrMetadata, -1, "structs nested more than 8 deep"},
		{"duplicate event id", "metadata", func(_ *testing.T, d []byte) []byte {
			return append(d, eventBlock(&EventClass{ID: 7, Name: "again"})...)
		}, ErrMetadata, -1, "event id 7 declared twice"},
	}
}

// TestCorruption checks that damaged traces produce clear errors naming
// the file and byte offset, and never panic.
func TestCorruption(t *testing.T) {
	good := t.TempDir()
	writeTestTrace(t, good, true)
	// The second packet of channel0_1 is where the discarded count shrinks.
	ch1 := testPackets[1].recs
	ch1Second := int64(PacketPreambleSize + len(encodeRecords(t, ch1)))
	for _, c := range corruptions(t) {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range []string{"metadata", "channel0_0", "channel0_1", "channel0_5"} {
				data, err := os.ReadFile(filepath.Join(good, name))
				if err != nil {
					t.Fatal(err)
				}
				if name == c.file {
					data = c.mutate(t, bytes.Clone(data))
				}
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := readErr(dir)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error %q does not match %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("error %q does not contain %q", err, c.reason)
			}
			path := filepath.Join(dir, c.file)
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if c.offset == -1 {
				return
			}
			want := c.offset
			if want == -2 {
				want = ch1Second + offDiscard
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.File != path || ce.Offset != want {
				t.Errorf("error %#v, want a CorruptError for %s at offset %d", err, path, want)
			}
			if s := fmt.Sprintf("reading %s at offset %d: ", path, want); !strings.HasPrefix(err.Error(), s) {
				t.Errorf("error %q does not start with %q", err, s)
			}
		})
	}
}

// readErr reads the whole trace and returns the first error.
func readErr(dir string) error {
	r, err := Open(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, err := range r.Events() {
		if err != nil {
			if _, again := r.Next(); again != err {
				return fmt.Errorf("error not sticky: %v then %v", err, again)
			}
			return err
		}
	}
	return nil
}

// TestOpenErrors checks errors about the trace directory itself.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a directory without metadata: %v, want ErrNotExist", err)
	}
	writeTestTrace(t, dir, true)
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "unexpected file README") {
		t.Errorf("Open with a stray file: %v", err)
	}
	os.Remove(filepath.Join(dir, "README"))
	// Hidden files (such as a leftover .metadata.tmp) and empty stream
	// files are ignored, as Babeltrace does.
	for _, name := range []string{".metadata.tmp", "channel0_9"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(r.Streams()); got != "[0 1 5]" {
		t.Errorf("streams %s, want [0 1 5]", got)
	}
	r.Close()
	if _, err := r.Next(); err == nil {
		t.Error("Next after Close succeeded")
	}
}

// TestFileShrinks checks a stream file cut short after Open, beyond what
// the reader reads ahead: the events before the cut packet are read, and
// the error names the end of the file, in the header and in the records
// of a packet.
func TestFileShrinks(t *testing.T) {
	good := t.TempDir()
	writeRoundTrip(t, good, roundTripCases()[1], true) // 1500 small packets a stream
	const name = "channel0_0"
	data, err := os.ReadFile(filepath.Join(good, name))
	if err != nil {
		t.Fatal(err)
	}
	var off int64 // the packet 1400, past the first read-ahead
	for range 1400 {
		off += int64(binary.LittleEndian.Uint64(data[off+offPktSize:]) / 8)
	}
	if off <= readAhead {
		t.Fatalf("packet 1400 at %d: the file is too small to test reading ahead", off)
	}
	content := int64(binary.LittleEndian.Uint64(data[off+offContent:]) / 8)
	for _, c := range []struct {
		name   string
		cut    int64
		reason string
	}{
		{"header", off + 30, fmt.Sprintf("file ended early: 30 bytes read of %d", PacketPreambleSize)},
		{"records", off + PacketPreambleSize + 5, fmt.Sprintf("file ended early: 5 bytes read of %d", content-PacketPreambleSize)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, n := range []string{"metadata", "channel0_0", "channel0_1"} {
				b, err := os.ReadFile(filepath.Join(good, n))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			path := filepath.Join(dir, name)
			if err := os.Truncate(path, c.cut); err != nil {
				t.Fatal(err)
			}
			var last int64 = -1
			for ev, err := range r.Events() {
				if err != nil {
					var ce *CorruptError
					if !errors.As(err, &ce) || ce.File != path || ce.Offset != c.cut || ce.Reason != c.reason {
						t.Errorf("error %v, want a CorruptError for %s at offset %d: %s", err, path, c.cut, c.reason)
					}
					break
				}
				if ev.Stream == 0 {
					last = ev.Offset
				}
			}
			if last < 0 || last >= off || off-last > 200 {
				t.Errorf("last event of %s read at %d, want the last record before the packet at %d", name, last, off)
			}
		})
	}
}
