package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/wire"
)

// discardBodies is an http.RoundTripper that answers 200 to every request
// without reading it: a collector that costs nothing.
type discardBodies struct{}

func (discardBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	req.Body.Close()
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: req}, nil
}

// loadClass is the class of scripts/load's event: int32, int64, "hello".
var loadClass = wire.EventClass{ID: 1, Name: "load:event", Fields: []wire.ClassField{
	{Name: "i", Type: "int32", Kind: "int32"}, {Name: "v", Type: "int64", Kind: "int64"}, {Name: "s", Type: "string", Kind: "string"}}}

// loadPacket is a packet of the records scripts/load fires, as many as
// a 256 KiB sub-buffer holds.
func loadPacket(b *testing.B) []byte {
	ec, err := loadClass.CTF()
	if err != nil {
		b.Fatal(err)
	}
	var p []byte
	for i := 0; len(p) < 256<<10-64; i++ {
		if p, err = ctf.AppendRecord(p, &ec, uint64(1e9+i*100), []ctf.Value{ctf.IntValue(int64(i)), ctf.IntValue(0), ctf.StringValue("hello")}, 0); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// BenchmarkOTLPPacket is record --otlp's work per event on a worker:
// the records of a packet turned into log records and committed to the
// exporter, whose batches go to a collector that costs nothing. decode
// is the way it went before (wire.Decoder into values, then
// LogBuilder.Add), transcode the way it goes now. ns/op is per event.
func BenchmarkOTLPPacket(b *testing.B) {
	packet := loadPacket(b)
	classes := []wire.EventClass{loadClass}
	for _, bc := range []struct {
		name string
		run  func(o *otlpOut, n int) error
	}{
		{"decode", func(o *otlpOut, n int) error {
			dec := wire.NewDecoder()
			if err := dec.Add(classes); err != nil {
				return err
			}
			bl := o.exp.NewLogBuilder()
			var last *wire.EventClass
			var c *otlp.Class
			for done := 0; done < n; {
				err := dec.Decode(packet, func(r *wire.Record) error {
					if r.Class != last {
						last, c = r.Class, o.classOf(r.Class)
					}
					bl.Add(c, o.cc.wallNS(r.TS), 1, r.Fields, r.Truncated)
					done++
					return nil
				})
				if err != nil {
					return err
				}
				o.exp.Commit(bl)
			}
			return nil
		}},
		{"transcode", func(o *otlpOut, n int) error {
			tc, err := newOTLPTranscoder(o, nil)
			if err != nil {
				return err
			}
			if err := tc.add(classes); err != nil {
				return err
			}
			bl := o.exp.NewLogBuilder()
			for done := 0; done < n; {
				if err := tc.packet(packet, bl, 1); err != nil {
					return err
				}
				done += bl.Len()
				o.exp.Commit(bl)
			}
			return nil
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			exp, err := otlp.New("http://collector.invalid:4318", otlp.WithHTTPClient(&http.Client{Transport: discardBodies{}}), otlp.WithBlock())
			if err != nil {
				b.Fatal(err)
			}
			o := newOTLPOut("http://collector.invalid:4318", exp, wire.Clock{Frequency: 1e9})
			o.scopes["load:event"] = otlp.Scope{Name: "example.com/load"}
			b.ReportAllocs()
			b.ResetTimer()
			if err := bc.run(o, b.N); err != nil {
				b.Fatal(err)
			}
			if err := exp.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
