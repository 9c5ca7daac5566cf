package otlp

import (
	"context"
	"testing"

	"github.com/tracemark/tracemark/ctf"
)

// BenchmarkAddRecords is the encoding alone of record --otlp's commonest
// work: a 256 KiB packet's records, from their CTF bytes into log
// records, by CTFEncoder.AddRecords. load is scripts/load's event
// (int32, int64, "hello"), ids an event that carries the program's trace
// context (a status, a latency, a trace id and a span id). The builder
// is emptied between packets instead of committed, so that nothing but
// the encoding is measured. ns/op is per event.
func BenchmarkAddRecords(b *testing.B) {
	tid, sid := make([]byte, 16), []byte{1, 2, 3, 4, 5, 6, 7, 8}
	for _, bc := range []struct {
		name   string
		fields []Field
		types  []ctf.FieldType
		vals   func(i int) []ctf.Value
	}{
		{"load", []Field{{Name: "i", Kind: "int32"}, {Name: "v", Kind: "int64"}, {Name: "s", Kind: "string"}},
			[]ctf.FieldType{{Kind: ctf.Int, Bits: 32}, {Kind: ctf.Int, Bits: 64}, {Kind: ctf.String}},
			func(i int) []ctf.Value {
				return []ctf.Value{ctf.IntValue(int64(i)), ctf.IntValue(0), ctf.StringValue("hello")}
			}},
		{"ids", []Field{{Name: "status", Kind: "int64"}, {Name: "latency", Kind: "duration"}, {Name: "trace_id", Kind: "trace_id"}, {Name: "span_id", Kind: "span_id"}},
			[]ctf.FieldType{{Kind: ctf.Int, Bits: 64}, {Kind: ctf.Int, Bits: 64}, {Kind: ctf.Bytes, Bits: 128}, {Kind: ctf.Bytes, Bits: 64}},
			func(i int) []ctf.Value {
				return []ctf.Value{ctf.IntValue(200), ctf.IntValue(int64(i) * 1000), ctf.BytesValue(tid), ctf.BytesValue(sid)}
			}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ec := ctf.EventClass{ID: 1, Name: "bench:event"}
			for i, f := range bc.fields {
				ec.Fields = append(ec.Fields, ctf.Field{Name: f.Name, Type: bc.types[i]})
			}
			var packet []byte
			var err error
			n := 0
			for ; len(packet) < 256<<10-64; n++ {
				if packet, err = ctf.AppendRecord(packet, &ec, uint64(1e9+n*100), bc.vals(n), 0); err != nil {
					b.Fatal(err)
				}
			}
			e, err := New("http://collector.invalid:4318")
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close(context.Background())
			c := &Class{Name: ec.Name, Scope: Scope{Name: "example.com/load"}, Fields: bc.fields}
			bl := e.NewLogBuilder()
			enc := bl.CTFEncoder(c, bc.types)
			lay := &CTFRecords{ID: 1, Epoch: 1.7e18, Observed: 1.7e18 + 5e9}
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += n {
				for i := range bl.scopes {
					sb := &bl.scopes[i]
					sb.recs, sb.ends = sb.recs[:0], sb.ends[:0]
				}
				bl.n = 0
				k, _, err := enc.AddRecords(packet, lay)
				if err != nil || k != n {
					b.Fatalf("encoded %d of %d records: %v", k, n, err)
				}
			}
		})
	}
}
