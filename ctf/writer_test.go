package ctf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestEventClassValidation(t *testing.T) {
	nine := make([]Field, 9)
	for i := range nine {
		nine[i] = Field{Name: fmt.Sprintf("f%d", i), Type: u8}
	}
	tests := []struct {
		name string
		ec   EventClass
		err  error  // nil: valid
		msg  string // text the error must contain
	}{
		{"colon in event name", EventClass{Name: "http:request", Fields: []Field{{Name: "a", Type: i64}}}, nil, ""},
		{"quotes and UTF-8 in event name", EventClass{Name: `say "hé" \o/`}, nil, ""},
		{"keyword field names", EventClass{Name: "k", Fields: []Field{{Name: "string", Type: str}, {Name: "event", Type: byt}, {Name: "struct", Type: u8}}}, nil, ""},
		{"eight fields with trailer", EventClass{Name: "t", Fields: nine[:8], Truncation: true}, nil, ""},
		{"empty event name", EventClass{Name: ""}, ErrInvalidName, "empty event name"},
		{"newline in event name", EventClass{Name: "a\nb"}, ErrInvalidName, "control character"},
		{"invalid UTF-8 in event name", EventClass{Name: "a\xffb"}, ErrInvalidName, "not valid UTF-8"},
		{"colon in field name", EventClass{Name: "e", Fields: []Field{{Name: "http:status", Type: u16}}}, ErrInvalidName, `field name "http:status" is not an identifier`},
		{"field name starting with a digit", EventClass{Name: "e", Fields: []Field{{Name: "1a", Type: u16}}}, ErrInvalidName, "not an identifier"},
		{"empty field name", EventClass{Name: "e", Fields: []Field{{Name: "", Type: u16}}}, ErrInvalidName, "not an identifier"},
		{"non-ASCII field name", EventClass{Name: "e", Fields: []Field{{Name: "é", Type: u16}}}, ErrInvalidName, "not an identifier"},
		{"reserved field name", EventClass{Name: "e", Fields: []Field{{Name: "_truncated", Type: u8}}}, ErrInvalidName, "starts with an underscore"},
		{"duplicate field", EventClass{Name: "e", Fields: []Field{{Name: "a", Type: u8}, {Name: "a", Type: str}}}, ErrInvalidClass, `duplicate field name "a"`},
		{"nine fields with trailer", EventClass{Name: "t", Fields: nine, Truncation: true}, ErrInvalidClass, "9 fields with a truncation trailer"},
		{"12-bit integer", EventClass{Name: "e", Fields: []Field{{Name: "a", Type: FieldType{Int, 12}}}}, ErrInvalidClass, "invalid bit width 12 for int field"},
		{"16-bit float", EventClass{Name: "e", Fields: []Field{{Name: "a", Type: FieldType{Float, 16}}}}, ErrInvalidClass, "bit width 16 for float"},
		{"sized string", EventClass{Name: "e", Fields: []Field{{Name: "a", Type: FieldType{String, 8}}}}, ErrInvalidClass, "bit width 8 for string"},
		{"unknown kind", EventClass{Name: "e", Fields: []Field{{Name: "a", Type: FieldType{Kind(42), 8}}}}, ErrInvalidClass, "unknown field kind 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Create(t.TempDir(), testInfo())
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			err = w.AddEventClass(tt.ec)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("AddEventClass: %v", err)
				}
				// The class must round-trip through the metadata.
				r, err := Open(w.Dir())
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if got := r.Classes(); len(got) != 1 || !got[0].equal(&tt.ec) {
					t.Errorf("read back %+v, want %+v", got, tt.ec)
				}
				return
			}
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %v, want %v containing %q", err, tt.err, tt.msg)
			}
			if len(w.Classes()) != 0 {
				t.Error("an invalid class was added")
			}
		})
	}
}

func TestAddEventClassConflicts(t *testing.T) {
	w, err := Create(t.TempDir(), testInfo())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a := EventClass{ID: 1, Name: "a", Fields: []Field{{Name: "x", Type: u8}}}
	if err := w.AddEventClass(a); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		st, err := os.Stat(filepath.Join(w.Dir(), "metadata"))
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	before := size()
	if err := w.AddEventClass(a); err != nil {
		t.Errorf("re-adding an identical class: %v", err)
	}
	if size() != before {
		t.Error("re-adding an identical class changed the metadata")
	}
	b := a
	b.Fields = []Field{{Name: "x", Type: u16}}
	if err := w.AddEventClass(b); !errors.Is(err, ErrInvalidClass) {
		t.Errorf("conflicting class: %v, want ErrInvalidClass", err)
	}
	// A batch is validated as a whole: nothing is added on error.
	c := EventClass{ID: 2, Name: "c"}
	if err := w.AddEventClasses([]EventClass{c, {ID: 2, Name: "c2"}}); !errors.Is(err, ErrInvalidClass) {
		t.Errorf("conflict within a batch: %v", err)
	}
	if len(w.Classes()) != 1 || size() != before {
		t.Errorf("failed batch added classes: %+v", w.Classes())
	}
}

func TestCreateValidation(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*TraceInfo)
		msg    string
	}{
		{"keyword clock name", func(i *TraceInfo) { i.Clock.Name = "clock" }, `clock name "clock" is not a TSDL identifier`},
		{"clock name with dash", func(i *TraceInfo) { i.Clock.Name = "mono-tonic" }, "is not a TSDL identifier"},
		{"zero frequency", func(i *TraceInfo) { i.Clock.Frequency = 0 }, "frequency 0"},
		{"huge offset", func(i *TraceInfo) { i.Clock.OffsetSeconds = 1 << 62 }, "out of the range"},
		{"env key", func(i *TraceInfo) { i.Env["host-name"] = "x" }, `env key "host-name"`},
		{"env control character", func(i *TraceInfo) { i.Env["hostname"] = "a\tb" }, "control character"},
		{"non-integer vpid", func(i *TraceInfo) { i.Env["vpid"] = "12a" }, "vpid"},
		{"description control character", func(i *TraceInfo) { i.Clock.Description = "a\x00" }, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := testInfo()
			tt.modify(&info)
			dir := filepath.Join(t.TempDir(), "trace")
			_, err := Create(dir, info)
			if !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %v, want ErrInvalidName containing %q", err, tt.msg)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("invalid Create left %s behind", dir)
			}
		})
	}
	dir := t.TempDir()
	writeTestTrace(t, dir, true)
	if _, err := Create(dir, testInfo()); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over an existing trace: %v, want ErrExist", err)
	}
}

// newRequestWriter returns a new trace in a temporary directory, with
// the class http:request, and a function that encodes a record of it at
// a timestamp.
func newRequestWriter(t *testing.T) (string, *Writer, func(ts uint64) []byte) {
	t.Helper()
	dir := t.TempDir()
	w, err := Create(dir, testInfo())
	if err != nil {
		t.Fatal(err)
	}
	ec := &testClasses[3] // http:request
	if err := w.AddEventClass(*ec); err != nil {
		t.Fatal(err)
	}
	return dir, w, func(ts uint64) []byte {
		b, err := AppendRecord(nil, ec, ts, testRecords[7].vals, 0)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestWritePacketValidation checks that invalid packets are refused
// without damaging the trace.
func TestWritePacketValidation(t *testing.T) {
	dir, w, good := newRequestWriter(t)
	if err := w.WritePacket(0, PacketInfo{BeginTS: 100, EndTS: 200, Seq: 4, Discarded: 2}, good(150)); err != nil {
		t.Fatal(err)
	}
	unknown := AppendEventHeader(nil, 9, 300)
	tests := []struct {
		name string
		p    PacketInfo
		recs []byte
		msg  string
	}{
		{"unknown class", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 5, Discarded: 2}, unknown, "record at offset 0: unknown event class id 9"},
		{"truncated record", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 5, Discarded: 2}, good(300)[:20], "string not terminated"},
		{"trailing garbage", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 5, Discarded: 2}, append(good(300), 1, 2, 3), "truncated event header"},
		{"timestamp before begin", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 5, Discarded: 2}, good(250), "timestamp 250 outside [300"},
		{"timestamp after end", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 5, Discarded: 2}, good(401), "timestamp 401 outside"},
		{"timestamps decreasing", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 5, Discarded: 2}, append(good(350), good(340)...), "timestamp 340 outside [350 (previous)"},
		{"begin after end", PacketInfo{BeginTS: 400, EndTS: 300, Seq: 5, Discarded: 2}, nil, "timestamp_begin 400 > timestamp_end 300"},
		{"overlapping previous packet", PacketInfo{BeginTS: 199, EndTS: 400, Seq: 5, Discarded: 2}, nil, "before the previous packet's timestamp_end 200"},
		{"sequence number repeated", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 4, Discarded: 2}, nil, "packet_seq_num 4 does not follow 4"},
		{"discarded count decreasing", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 5, Discarded: 1}, nil, "events_discarded 1 is smaller"},
		{"time out of range", PacketInfo{BeginTS: 300, EndTS: 1 << 63, Seq: 5, Discarded: 2}, nil, "out of the range of nanoseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := w.WritePacket(0, tt.p, tt.recs)
			if !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %v, want ErrInvalidPacket containing %q", err, tt.msg)
			}
		})
	}
	if err := w.WritePacket(0, PacketInfo{BeginTS: 300, EndTS: 400, Seq: 5, Discarded: 2}, good(300)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{
		func() error { return w.WritePacket(0, PacketInfo{BeginTS: 500, EndTS: 500, Seq: 6}, nil) },
		func() error { return w.AddEventClass(EventClass{ID: 5, Name: "late"}) },
		w.Sync, w.Close,
	} {
		if err := f(); !errors.Is(err, ErrClosed) {
			t.Errorf("after Close: %v, want ErrClosed", err)
		}
	}
	evs := readAll(t, dir)
	if len(evs) != 3 || evs[0].Class != nil || evs[1].Cycles != 150 || evs[2].Cycles != 300 {
		t.Errorf("read %+v, want a notice and the two valid events", evs)
	}
	if haveBabeltrace {
		if c := babeltraceCount(t, dir); c.events != 2 {
			t.Errorf("babeltrace read %d events, want 2", c.events)
		}
	}
}

// TestConcurrentWriters writes packets from several goroutines while
// another adds event classes; run with -race.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, testInfo())
	if err != nil {
		t.Fatal(err)
	}
	const streams, packets, lateClasses = 4, 200, 50
	base := EventClass{ID: 0, Name: "base", Fields: []Field{{Name: "i", Type: u64}, {Name: "s", Type: str}}}
	if err := w.AddEventClass(base); err != nil {
		t.Fatal(err)
	}
	added := make(chan EventClass, lateClasses)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= lateClasses; i++ {
			ec := EventClass{ID: uint16(i), Name: fmt.Sprintf("late%d", i), Fields: []Field{{Name: "v", Type: i32}}}
			if err := w.AddEventClass(ec); err != nil {
				t.Error(err)
				return
			}
			added <- ec
		}
		close(added)
	}()
	var mu sync.Mutex
	var known []EventClass // classes whose AddEventClass returned
	for s := range uint32(streams) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var recs []byte
			for p := range packets {
				mu.Lock()
				for more := true; more; {
					select {
					case ec, ok := <-added:
						if ok {
							known = append(known, ec)
						}
						more = ok
					default:
						more = false
					}
				}
				use := append([]EventClass(nil), known...)
				mu.Unlock()
				ts := uint64(p * 100)
				recs = recs[:0]
				recs, _ = AppendRecord(recs, &base, ts, []Value{UintValue(uint64(p)), StringValue("hello")}, 0)
				for i, ec := range use {
					recs, _ = AppendRecord(recs, &ec, ts+1+uint64(i), []Value{IntValue(int64(i))}, 0)
				}
				if err := w.WritePacket(s, PacketInfo{BeginTS: ts, EndTS: ts + 99, Seq: uint64(p), CPU: s}, recs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	syncErr := make(chan error, 1)
	go func() { syncErr <- w.Sync() }()
	wg.Wait()
	if err := <-syncErr; err != nil {
		t.Error(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs := readAll(t, dir)
	base0 := 0
	for i, ev := range evs {
		if i > 0 && ev.Cycles < evs[i-1].Cycles {
			t.Fatalf("event %d out of order", i)
		}
		if ev.Class.ID == 0 {
			base0++
		}
	}
	if base0 != streams*packets {
		t.Errorf("%d base events, want %d", base0, streams*packets)
	}
	if haveBabeltrace {
		if c := babeltraceCount(t, dir); c.events != len(evs) {
			t.Errorf("babeltrace read %d events, Reader %d", c.events, len(evs))
		}
	}
}

// TestWriteTrustedPacket checks that trusted packets read back like
// checked ones, and that what the trusted write still checks (the packet
// context, the stream order, the first record's header) is refused.
func TestWriteTrustedPacket(t *testing.T) {
	dir, w, rec := newRequestWriter(t)
	if err := w.WriteTrustedPacket(0, PacketInfo{BeginTS: 100, EndTS: 200, Seq: 0}, append(rec(100), rec(200)...)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    PacketInfo
		recs []byte
		msg  string
	}{
		{"unknown class", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 1}, AppendEventHeader(nil, 9, 300), "unknown event class id 9"},
		{"short record", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 1}, []byte{1, 2, 3}, "truncated event header"},
		{"first timestamp before begin", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 1}, rec(250), "timestamp 250 outside [300, 400]"},
		{"begin after end", PacketInfo{BeginTS: 400, EndTS: 300, Seq: 1}, nil, "timestamp_begin 400 > timestamp_end 300"},
		{"overlapping previous packet", PacketInfo{BeginTS: 199, EndTS: 400, Seq: 1}, nil, "before the previous packet's timestamp_end 200"},
		{"sequence number repeated", PacketInfo{BeginTS: 300, EndTS: 400, Seq: 0}, nil, "packet_seq_num 0 does not follow 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := w.WriteTrustedPacket(0, tt.p, tt.recs)
			if !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %v, want ErrInvalidPacket containing %q", err, tt.msg)
			}
		})
	}
	if err := w.WriteTrustedPacket(0, PacketInfo{BeginTS: 300, EndTS: 300, Seq: 1, Discarded: 3}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs := readAll(t, dir)
	if len(evs) != 3 || evs[0].Class == nil || evs[1].Class == nil || evs[2].Discarded != 3 {
		t.Fatalf("read back %d events: %+v", len(evs), evs)
	}
}

// TestWriterPacesWriteback writes 40 MiB of packets: every chunk of the
// stream file is asked to be written back once, in order, page-aligned,
// and only pages before the tail packet's; each is dropped from the page
// cache only once written back was asked for a chunk later; and the
// trace reads back whole.
func TestWriterPacesWriteback(t *testing.T) {
	dir, w, rec := newRequestWriter(t)
	one := rec(0)
	type span struct{ off, n int64 }
	var started, dropped []span
	var tails []int64
	recs := bytes.Repeat(one, (256<<10)/len(one))
	const packets = 160 // 40 MiB
	for i := range uint64(packets) {
		if err := w.WriteTrustedPacket(0, PacketInfo{Seq: i}, recs); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			s := w.streams[0]
			s.startWB = func(_ *os.File, off, n int64) { started = append(started, span{off, n}) }
			s.dropWB = func(_ *os.File, off, n int64) {
				dropped = append(dropped, span{off, n})
				tails = append(tails, int64(len(started))) // chunks started by then
			}
		}
		if st := started; len(st) > 0 && st[len(st)-1].off+st[len(st)-1].n > w.streams[0].tail {
			t.Fatalf("packet %d: writeback asked up to %d, beyond the tail packet at %d", i, st[len(st)-1].off+st[len(st)-1].n, w.streams[0].tail)
		}
	}
	if len(started) < 4 {
		t.Fatalf("writeback asked %d times for 40 MiB, want one per %d bytes", len(started), writebackChunk)
	}
	next := int64(0)
	for i, sp := range started {
		if sp.off != next || sp.off%pageSize != 0 || sp.n%pageSize != 0 || sp.n < writebackChunk {
			t.Fatalf("writeback %d: [%d, +%d), want from %d, page-aligned, at least %d bytes", i, sp.off, sp.n, next, writebackChunk)
		}
		next = sp.off + sp.n
	}
	if len(dropped) != len(started)-1 {
		t.Fatalf("%d chunks dropped, %d written back: want all but the last", len(dropped), len(started))
	}
	for i, sp := range dropped {
		if sp != started[i] || tails[i] != int64(i+2) {
			t.Fatalf("drop %d: [%d, +%d) after %d writebacks, want chunk %v after %d", i, sp.off, sp.n, tails[i], started[i], i+2)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if evs := readAll(t, dir); len(evs) != packets*len(recs)/len(one) {
		t.Fatalf("read back %d events, want %d", len(evs), packets*len(recs)/len(one))
	}
}
