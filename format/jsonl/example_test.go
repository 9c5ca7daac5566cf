package jsonl_test

import (
	"log"
	"math"
	"os"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/jsonl"
)

// Events normally come from a ctf.Reader; here they are built by hand.
func ExampleWriter() {
	class := ctf.EventClass{ID: 0, Name: "cache:stats", Fields: []ctf.Field{
		{Name: "hits", Type: ctf.FieldType{Kind: ctf.Uint, Bits: 64}},
		{Name: "ratio", Type: ctf.FieldType{Kind: ctf.Float, Bits: 64}},
		{Name: "key", Type: ctf.FieldType{Kind: ctf.Bytes}},
	}}
	w := jsonl.NewWriter(os.Stdout)
	ev := ctf.Event{Class: &class, Time: 1700000000_000001000, Fields: []ctf.Value{
		ctf.UintValue(math.MaxUint64), ctf.FloatValue(math.NaN()), ctf.BytesValue([]byte{0xca, 0xfe})}}
	if err := w.WriteEvent(&ev); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"ts_ns":1700000000000001000,"time":"2023-11-14T22:13:20.000001000Z","rel_ns":0,"stream":0,"cpu":0,"event":"cache:stats","provider":"cache","fields":{"hits":18446744073709551615,"ratio":"NaN","key":"cafe"}}
}
