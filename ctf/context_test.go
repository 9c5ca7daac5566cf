package ctf

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// contextFields is a stream event context like tracemark record
// --context pid,procname,cpu writes.
var contextFields = []Field{
	{Name: "pid", Type: FieldType{Kind: Int, Bits: 32}},
	{Name: "procname", Type: FieldType{Kind: String}},
	{Name: "cpu", Type: FieldType{Kind: Uint, Bits: 32}},
}

// writeContextTrace writes two events with a stream event context.
func writeContextTrace(t *testing.T, dir string) {
	t.Helper()
	info := TraceInfo{Clock: Clock{Name: "monotonic", Frequency: 1e9, OffsetSeconds: 1700000000},
		Env: map[string]string{"hostname": "h", "procname": "app", "vpid": "42"}, EventContext: contextFields}
	w, err := Create(dir, info)
	if err != nil {
		t.Fatal(err)
	}
	ec := EventClass{ID: 3, Name: "a:b", Fields: []Field{{Name: "n", Type: FieldType{Kind: Int, Bits: 64}}}}
	if err := w.AddEventClass(ec); err != nil {
		t.Fatal(err)
	}
	var recs []byte
	for i, cpu := range []uint64{3, 7} {
		recs = AppendEventHeader(recs, 3, uint64(100+i))
		recs = AppendInt(recs, 32, 42)
		recs = AppendString(recs, "app")
		recs = AppendUint(recs, 32, cpu)
		recs = AppendInt(recs, 64, int64(-i))
	}
	if err := w.WritePacket(0, PacketInfo{BeginTS: 100, EndTS: 101}, recs); err != nil {
		t.Fatal(err)
	}
	// A record without its context does not parse: the writer refuses it.
	bad := AppendInt(AppendEventHeader(nil, 3, 102), 64, 5)
	if err := w.WritePacket(0, PacketInfo{BeginTS: 102, EndTS: 102, Seq: 1}, bad); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("record without context: %v, want ErrInvalidPacket", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestEventContext(t *testing.T) {
	dir := t.TempDir()
	writeContextTrace(t, dir)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Info().EventContext; len(got) != 3 || got[1] != contextFields[1] || got[2] != contextFields[2] {
		t.Errorf("EventContext read back as %v", got)
	}
	var seen []string
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Context) != 3 || ev.Context[0].Int != 42 || string(ev.Context[1].Bytes) != "app" || len(ev.Fields) != 1 {
			t.Fatalf("event %+v", ev)
		}
		seen = append(seen, strings.Repeat("x", int(ev.Context[2].Uint)))
		if ev.Fields[0].Int != -int64(len(seen)-1) {
			t.Errorf("field after the context decoded as %d", ev.Fields[0].Int)
		}
	}
	if len(seen) != 2 || len(seen[0]) != 3 || len(seen[1]) != 7 {
		t.Errorf("cpu contexts %v, want 3 and 7", seen)
	}
	stdout, stderr := babeltrace(t, dir)
	for _, want := range []string{`a:b: { cpu_id = 0 }, { pid = 42, procname = "app", cpu = 3 }, { n = 0 }`, `{ pid = 42, procname = "app", cpu = 7 }, { n = -1 }`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("babeltrace2 does not show %s:\n%s%s", want, stdout, stderr)
		}
	}
}

func TestEventContextInvalid(t *testing.T) {
	for _, ctx := range [][]Field{
		{{Name: "pid", Type: FieldType{Kind: Int, Bits: 32}}, {Name: "pid", Type: FieldType{Kind: Int, Bits: 32}}},
		{{Name: "b", Type: FieldType{Kind: Bytes}}},
		{{Name: "x y", Type: FieldType{Kind: Int, Bits: 32}}},
	} {
		_, err := Create(t.TempDir(), TraceInfo{Clock: Clock{Name: "c", Frequency: 1e9}, EventContext: ctx})
		if err == nil {
			t.Errorf("Create with context %v succeeded", ctx)
		}
	}
}
