package otlp

import (
	"context"
	"testing"

	"github.com/tracemark/tracemark/ctf"
)

// BenchmarkAddRecords is the encoding alone of record --otlp's commonest
// work: a 256 KiB packet's records of scripts/load's event (int32,
// int64, "hello"), from their CTF bytes into log records, by
// CTFEncoder.AddRecords. The builder is emptied between packets instead
// of committed, so that nothing but the encoding is measured. ns/op is
// per event.
func BenchmarkAddRecords(b *testing.B) {
	ec := ctf.EventClass{ID: 1, Name: "load:event", Fields: []ctf.Field{
		{Name: "i", Type: ctf.FieldType{Kind: ctf.Int, Bits: 32}},
		{Name: "v", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}},
		{Name: "s", Type: ctf.FieldType{Kind: ctf.String}}}}
	var packet []byte
	var err error
	n := 0
	for ; len(packet) < 256<<10-64; n++ {
		vals := []ctf.Value{ctf.IntValue(int64(n)), ctf.IntValue(0), ctf.StringValue("hello")}
		if packet, err = ctf.AppendRecord(packet, &ec, uint64(1e9+n*100), vals, 0); err != nil {
			b.Fatal(err)
		}
	}
	e, err := New("http://collector.invalid:4318")
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	c := &Class{Name: ec.Name, Scope: Scope{Name: "example.com/load"},
		Fields: []Field{{Name: "i", Kind: "int32"}, {Name: "v", Kind: "int64"}, {Name: "s", Kind: "string"}}}
	types := []ctf.FieldType{ec.Fields[0].Type, ec.Fields[1].Type, ec.Fields[2].Type}
	bl := e.NewLogBuilder()
	enc := bl.CTFEncoder(c, types)
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
}
