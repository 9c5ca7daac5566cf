package main

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/evctx"
	"github.com/tracemark/tracemark/internal/wire"
)

// otlpTranscoder turns the CTF records of a recording's packets into
// log records of an otlp.LogBuilder in one pass, without decoding them
// into []ctf.Value first (record --otlp's workers): it reads each
// record's header and event context, and LogBuilder.AddCTF encodes its
// fields straight from their bytes. It accepts the classes a
// wire.Decoder accepts (it keeps one to check them); the records of span
// classes are decoded into values by that decoder, since Exporter.SpanOf
// needs them, and added with LogBuilder.Add. A record that does not
// follow its class's layout is an error wrapping wire.ErrFrame, as from
// a wire.Decoder; the records before it are added. An otlpTranscoder
// belongs to one goroutine.
type otlpTranscoder struct {
	o       *otlpOut
	check   *wire.Decoder
	byID    []*otlpTClass    // indexed by the records' ids, twin ids too
	ctx     []ctf.Field      // the stream event context
	ctxSize int              // its size, or -1 if it holds a string
	rec     wire.Record      // a span class's record, decoded
	b       *otlp.LogBuilder // the builder the classes' encoders are for

	// What packet found: the events per run of one class, and the span
	// events, copied, for SpanOf.
	runs  []markerRun
	spans []spanEvent
}

// markerRun counts the events of a run of records of one class.
type markerRun struct {
	name string
	n    uint64
}

// otlpTClass is a class as the transcoder reads its records.
type otlpTClass struct {
	ec      *wire.EventClass
	oc      *otlp.Class     // looked up at its first record (classOf)
	span    bool            // oc has Span or StartKeys: decode into values
	enc     otlp.CTFEncoder // if oc and not span: its records into b
	types   []ctf.FieldType
	trailer bool   // Truncation: records of id trunc end with a bitmask
	trunc   uint16 // the id of its records with the bitmask
}

// newOTLPTranscoder returns a transcoder for o's records, which carry
// the event context named by evContext (the Hello's Context).
func newOTLPTranscoder(o *otlpOut, evContext []string) (*otlpTranscoder, error) {
	t := &otlpTranscoder{o: o, check: wire.NewDecoder()}
	if err := t.check.SetContext(evContext); err != nil {
		return nil, err
	}
	fields, err := evctx.Fields(evContext)
	if err != nil {
		return nil, err // SetContext refused it first
	}
	t.ctx = fields
	for _, f := range fields {
		if f.Type.Kind == ctf.String {
			t.ctxSize = -1
			break
		}
		t.ctxSize += f.Type.Bits / 8
	}
	return t, nil
}

// add makes classes known, if a wire.Decoder takes them.
func (t *otlpTranscoder) add(cs []wire.EventClass) error {
	if err := t.check.Add(cs); err != nil {
		return err
	}
	for i := range cs {
		ec, err := cs[i].CTF()
		if err != nil {
			return err // Add refused it first
		}
		c := &otlpTClass{ec: t.check.Class(cs[i].ID), trailer: ec.Truncation, trunc: ec.ID}
		if ec.Twin() {
			c.trunc = ec.TruncatedID
		}
		for _, f := range ec.Fields {
			c.types = append(c.types, f.Type)
		}
		if old := t.get(ec.ID); old != nil && old.trunc != ec.ID && t.get(old.trunc) == old {
			t.set(old.trunc, nil) // the replaced class's twin id, as ctf forgets it
		}
		t.set(ec.ID, c)
		if ec.Truncation {
			t.set(c.trunc, c)
		}
	}
	return nil
}

func (t *otlpTranscoder) get(id uint16) *otlpTClass {
	if int(id) < len(t.byID) {
		return t.byID[id]
	}
	return nil
}

func (t *otlpTranscoder) set(id uint16, c *otlpTClass) {
	for len(t.byID) <= int(id) {
		t.byID = append(t.byID, nil)
	}
	t.byID[id] = c
}

// packet adds the records of a packet to b, observed at observed (ns
// since the Unix epoch), and sets runs and spans.
//
// A record of a class that is not a span class is followed by the
// records of the same id after it, in a loop that reads only their
// headers (more): the work per record outside its fields' encoding was
// a fifth of a record's when each went through record.
func (t *otlpTranscoder) packet(data []byte, b *otlp.LogBuilder, observed int64) error {
	t.runs, t.spans = t.runs[:0], nil
	if b != t.b {
		for _, c := range t.byID {
			if c != nil {
				c.oc = nil // its encoder is for another builder
			}
		}
		t.b = b
	}
	var last *otlpTClass
	for off := 0; off < len(data); {
		c, n, err := t.record(data[off:], b, observed)
		if err != nil {
			return fmt.Errorf("%w: record at offset %d: %v", wire.ErrFrame, off, err)
		}
		if c != last {
			last = c
			t.runs = append(t.runs, markerRun{name: c.ec.Name})
		}
		run := &t.runs[len(t.runs)-1]
		run.n++
		id := binary.LittleEndian.Uint16(data[off:])
		off += n
		if c.span || t.ctxSize < 0 {
			continue
		}
		k, m, err := t.more(c, id, data[off:], observed)
		run.n += uint64(k)
		off += m
		if err != nil {
			return fmt.Errorf("%w: record at offset %d: %v", wire.ErrFrame, off, err)
		}
	}
	return nil
}

// more adds the records at the start of data whose id is id, records of
// class c, which is not a span class, as record would, with a stream
// event context of a fixed size. It returns how many it added and the
// bytes they take; it stops at a record of another id, at one it cannot
// add (with the error), and where what is left cannot hold a header and
// context (for record to report).
func (t *otlpTranscoder) more(c *otlpTClass, id uint16, data []byte, observed int64) (int, int, error) {
	p := ctf.EventHeaderSize + t.ctxSize
	trailer := c.trailer && id == c.trunc
	cc := t.o.cc
	if cc.freq == 1e9 {
		// Timestamps in ns: the encoder's own loop.
		lay := otlp.CTFRecords{ID: id, Context: t.ctxSize, Epoch: cc.offsetNS, Observed: observed, Trailer: trailer}
		return c.enc.AddRecords(data, &lay)
	}
	k, off := 0, 0
	for len(data)-off >= p && binary.LittleEndian.Uint16(data[off:]) == id {
		ts := cc.wallNS(binary.LittleEndian.Uint64(data[off+2:]))
		n, err := c.enc.Add(ts, observed, data[off+p:], trailer)
		if err != nil {
			return k, off, err
		}
		off += p + n
		k++
	}
	return k, off, nil
}

// record adds the record at the start of rec to b and returns its class
// and size.
func (t *otlpTranscoder) record(rec []byte, b *otlp.LogBuilder, observed int64) (*otlpTClass, int, error) {
	if len(rec) < ctf.EventHeaderSize {
		return nil, 0, fmt.Errorf("truncated event header: %d bytes left in packet, need %d", len(rec), ctf.EventHeaderSize)
	}
	id := binary.LittleEndian.Uint16(rec)
	c := t.get(id)
	if c == nil {
		return nil, 0, fmt.Errorf("unknown event class id %d", id)
	}
	if c.oc == nil {
		c.oc = t.o.classOf(c.ec)
		c.span = c.oc.Span != nil || c.oc.StartKeys != nil
		if !c.span {
			c.enc = b.CTFEncoder(c.oc, c.types)
		}
	}
	ts := t.o.cc.wallNS(binary.LittleEndian.Uint64(rec[2:]))
	p := ctf.EventHeaderSize
	if t.ctxSize > 0 {
		if len(rec)-p < t.ctxSize {
			return nil, 0, fmt.Errorf("event context: %d bytes left in packet, need %d", len(rec)-p, t.ctxSize)
		}
		p += t.ctxSize
	} else if t.ctxSize < 0 {
		var err error
		if p, err = t.skipContext(rec, p); err != nil {
			return nil, 0, err
		}
	}
	if c.span {
		// Decoded into values, which SpanOf needs, by the decoder
		// that checked the class.
		n, err := t.check.DecodeRecord(rec, &t.rec)
		if err != nil {
			return nil, 0, err
		}
		vals := t.rec.Fields
		b.Add(c.oc, ts, observed, vals, t.rec.Truncated)
		t.spans = append(t.spans, spanEvent{c: c.oc, ts: ts, vals: cloneValues(vals), truncated: t.rec.Truncated})
		return c, n, nil
	}
	n, err := c.enc.Add(ts, observed, rec[p:], c.trailer && id == c.trunc)
	if err != nil {
		return nil, 0, err
	}
	return c, p + n, nil
}

// skipContext skips a stream event context that holds a string.
func (t *otlpTranscoder) skipContext(rec []byte, p int) (int, error) {
	for _, f := range t.ctx {
		if f.Type.Kind == ctf.String {
			j := bytes.IndexByte(rec[p:], 0)
			if j < 0 {
				return 0, fmt.Errorf("event context field %q: string not terminated before the end of the packet content", f.Name)
			}
			p += j + 1
			continue
		}
		if n := f.Type.Bits / 8; len(rec)-p >= n {
			p += n
		} else {
			return 0, fmt.Errorf("event context field %q: truncated %s: %d bytes left in packet", f.Name, f.Type, len(rec)-p)
		}
	}
	return p, nil
}
