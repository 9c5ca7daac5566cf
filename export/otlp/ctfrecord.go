package otlp

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/cstring"
)

// AddCTF encodes an event whose fields are the bytes of a CTF record, as
// Begin, a call per field and End would, without a call per field (the
// tracemark CLI's way for the records it receives, in one pass): rec
// starts with the fields as ctf.AppendRecord lays them out after the
// event header and context, of the types given, in the order of
// cl.Fields; then, if trailer, the record's _truncated byte. It returns
// how many bytes of rec the fields and trailer take.
//
// If rec does not hold them, AddCTF encodes nothing and returns an error
// wrapping ctf.ErrCorrupt that names the field; a type no class may have
// (ctf.FieldType.Validate) is an error wrapping ctf.ErrInvalidClass. If
// the exporter's queue is full (and not WithBlock), it reads the fields
// through, encodes nothing and Commit counts the event, if rec holds one,
// as dropped, as with Begin. AddCTF keeps no byte slice of rec.
func (b *LogBuilder) AddCTF(cl *Class, types []ctf.FieldType, timeNS, observed int64, rec []byte, trailer bool) (int, error) {
	if pl := b.plan(cl, types); pl.ops != nil && !b.e.full.Load() {
		b.abandon()
		run := ctfRun{timeNS: timeNS, observe: observed, trailer: trailer, max: 1}
		if k, n := b.addPlanned(pl, rec, &run); k == 1 {
			return n, nil
		}
	}
	return b.addCTFGeneral(cl, types, timeNS, observed, rec, trailer)
}

// CTFEncoder encodes the CTF records of one class, with fields of one
// list of types, into a LogBuilder, as AddCTF does, but finds what AddCTF
// finds for every record (the class as the exporter prepared it, the
// work planned for its fields) once, when it is made: for a caller that
// encodes many records of a class in a row, such as the records of a
// packet. It encodes for the class as it was when the encoder was made,
// and belongs to the goroutine that uses its LogBuilder.
type CTFEncoder struct {
	b  *LogBuilder
	cl *Class
	pl *ctfPlan
}

// CTFEncoder returns an encoder of cl's records, with fields of the given
// types, into b. The types are copied.
func (b *LogBuilder) CTFEncoder(cl *Class, types []ctf.FieldType) CTFEncoder {
	return CTFEncoder{b: b, cl: cl, pl: b.plan(cl, types)}
}

// Add encodes a record as AddCTF(cl, types, timeNS, observed, rec,
// trailer) would, cl and types being the encoder's.
func (e *CTFEncoder) Add(timeNS, observed int64, rec []byte, trailer bool) (int, error) {
	b := e.b
	if e.pl.ops != nil && !b.e.full.Load() {
		b.abandon()
		run := ctfRun{timeNS: timeNS, observe: observed, trailer: trailer, max: 1}
		if k, n := b.addPlanned(e.pl, rec, &run); k == 1 {
			return n, nil
		}
	}
	return b.addCTFGeneral(e.cl, e.pl.types, timeNS, observed, rec, trailer)
}

// CTFRecords is how the records of a CTF packet that
// CTFEncoder.AddRecords encodes are laid out, and their times.
type CTFRecords struct {
	// ID is the records' event class id: the run ends at a record of
	// another.
	ID uint16
	// Context is the size in bytes of the event context between a
	// record's event header (ctf.EventHeaderSize bytes: its id, then
	// its timestamp) and its fields: 0 or more.
	Context int
	// Epoch is the time of timestamp 0 in ns since the Unix epoch: the
	// records' timestamps count ns from it.
	Epoch int64
	// Observed is the records' observed time, in ns since the Unix
	// epoch.
	Observed int64
	// Trailer says that each record's fields are followed by its
	// _truncated byte.
	Trailer bool
}

// AddRecords encodes the records at the start of data, each laid out as
// in a CTF packet (an event header, an event context of lay.Context
// bytes, then the fields and trailer as AddCTF reads them), as a call of
// Add per record would, each at time lay.Epoch plus its timestamp. It
// returns how many records it took (encoded, or read through and
// counted as dropped when the queue is full, as Add does) and the bytes
// they take: it stops at a record of another id than lay.ID, where data
// cannot hold another header and context, and at a record Add would
// refuse, with Add's error. A packet's run of records of one class is
// encoded in one loop, without a call per record. A negative
// lay.Context is an error.
func (e *CTFEncoder) AddRecords(data []byte, lay *CTFRecords) (int, int, error) {
	if lay.Context < 0 {
		return 0, 0, fmt.Errorf("otlp: CTFRecords.Context %d is negative", lay.Context)
	}
	head := ctf.EventHeaderSize + min(lay.Context, len(data)) // no record if more
	b := e.b
	run := ctfRun{head: head, id: lay.ID, epoch: lay.Epoch, observe: lay.Observed, trailer: lay.Trailer, max: len(data)}
	k, off := 0, 0
	for {
		if e.pl.ops != nil && !b.e.full.Load() {
			b.abandon()
			n, m := b.addPlanned(e.pl, data[off:], &run)
			k, off = k+n, off+m
		}
		if len(data)-off < head || binary.LittleEndian.Uint16(data[off:]) != lay.ID {
			return k, off, nil
		}
		// A record the plan leaves to the general path.
		ts := lay.Epoch + int64(binary.LittleEndian.Uint64(data[off+2:]))
		n, err := e.Add(ts, lay.Observed, data[off+head:], lay.Trailer)
		if err != nil {
			return k, off, err
		}
		k, off = k+1, off+head+n
	}
}

// addCTFGeneral is AddCTF's general path, for what a plan leaves out
// (ctfplan.go): Begin, the fields read and encoded one by one, End.
func (b *LogBuilder) addCTFGeneral(cl *Class, types []ctf.FieldType, timeNS, observed int64, rec []byte, trailer bool) (int, error) {
	if !b.Begin(cl, timeNS, observed) {
		n, err := readCTF(cl, types, rec, trailer)
		if err != nil {
			b.skipped-- // not an event: not dropped either
		}
		return n, err
	}
	var n int
	var err error
	b.sb.recs, n, err = b.encodeCTF(b.sb.recs, types, rec)
	if err != nil {
		b.abandon()
		return 0, err
	}
	var truncated uint8
	if trailer {
		if n >= len(rec) {
			b.abandon()
			return 0, errNoTrailer(cl)
		}
		truncated = rec[n]
		n++
	}
	b.End(truncated)
	return n, nil
}

// encodeCTF appends to r, the records Begin started one in, the fields
// of that record, read from rec, and returns r and their size.
func (b *LogBuilder) encodeCTF(r []byte, types []ctf.FieldType, rec []byte) ([]byte, int, error) {
	c := b.cur
	p := 0
	for i := range types {
		t := &types[i]
		var f *fieldEnc
		if i < len(c.fields) {
			f = &c.fields[i]
		}
		switch t.Kind {
		case ctf.Int, ctf.Uint, ctf.Float:
			n, ok := numberSize(t)
			if !ok {
				return r, 0, errBadType(c.Class, i, t)
			}
			if len(rec)-p < n {
				return r, 0, errFieldTruncated(c.Class, i, len(rec)-p, n)
			}
			u := readUint(rec[p:], n)
			p += n
			switch {
			case f == nil:
			case t.Kind == ctf.Int:
				if f.role <= roleBool {
					shift := 64 - uint(t.Bits)
					r = f.appendInt(r, uint64(int64(u<<shift)>>shift))
				}
			case t.Kind == ctf.Uint:
				r = f.appendUint(r, u)
			case n == 4:
				r = f.appendFloat(r, float64(math.Float32frombits(uint32(u))))
			default:
				r = f.appendFloat(r, math.Float64frombits(u))
			}
		case ctf.String:
			if t.Bits != 0 {
				return r, 0, errBadType(c.Class, i, t)
			}
			j := cstring.Index(rec[p:])
			if j < 0 {
				return r, 0, errUnterminated(c.Class, i)
			}
			if f != nil {
				r = b.appendBytesValue(r, f, anyString, rec[p:p+j:p+j])
			}
			p += j + 1
		case ctf.Bytes:
			v, next, err := ctfBytes(c.Class, t, i, rec, p)
			if err != nil {
				return r, 0, err
			}
			if f != nil {
				r = b.appendBytesValue(r, f, anyBytes, v)
			}
			p = next
		default:
			return r, 0, errBadType(c.Class, i, t)
		}
	}
	return r, p, nil
}

// readCTF reads through the fields (and trailer) of a record as AddCTF
// does, encoding nothing, and returns their size.
func readCTF(cl *Class, types []ctf.FieldType, rec []byte, trailer bool) (int, error) {
	p := 0
	for i := range types {
		t := &types[i]
		switch t.Kind {
		case ctf.Int, ctf.Uint, ctf.Float:
			n, ok := numberSize(t)
			switch {
			case !ok:
				return 0, errBadType(cl, i, t)
			case len(rec)-p < n:
				return 0, errFieldTruncated(cl, i, len(rec)-p, n)
			}
			p += n
		case ctf.String:
			if t.Bits != 0 {
				return 0, errBadType(cl, i, t)
			}
			j := cstring.Index(rec[p:])
			if j < 0 {
				return 0, errUnterminated(cl, i)
			}
			p += j + 1
		case ctf.Bytes:
			_, next, err := ctfBytes(cl, t, i, rec, p)
			if err != nil {
				return 0, err
			}
			p = next
		default:
			return 0, errBadType(cl, i, t)
		}
	}
	if trailer {
		if p >= len(rec) {
			return 0, errNoTrailer(cl)
		}
		p++
	}
	return p, nil
}

// numberSize returns the size in bytes of an integer or floating-point
// field of type t, or false if no class may have such a field.
func numberSize(t *ctf.FieldType) (int, bool) {
	switch t.Bits {
	case 8, 16:
		return t.Bits >> 3, t.Kind != ctf.Float
	case 32, 64:
		return t.Bits >> 3, true
	}
	return 0, false
}

// readUint reads a little-endian integer of n bytes (1, 2, 4 or 8) at
// the start of b, which holds it.
func readUint(b []byte, n int) uint64 {
	switch n {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return binary.LittleEndian.Uint64(b)
}

// ctfBytes reads field i, of kind Bytes and type t, at offset p of rec:
// its bytes and the offset after them.
func ctfBytes(cl *Class, t *ctf.FieldType, i int, rec []byte, p int) ([]byte, int, error) {
	n := t.Bits >> 3
	if t.Bits < 0 || t.Bits%8 != 0 || n > ctf.MaxFixedBytes {
		return nil, 0, errBadType(cl, i, t)
	}
	if n == 0 {
		if len(rec)-p < 4 {
			return nil, 0, fmt.Errorf("%w: event %q field %q: truncated sequence length: %d bytes left in packet", ctf.ErrCorrupt, cl.Name, fieldName(cl, i), len(rec)-p)
		}
		l := binary.LittleEndian.Uint32(rec[p:])
		if uint64(l) > uint64(len(rec)-p-4) {
			return nil, 0, fmt.Errorf("%w: event %q field %q: sequence length %d exceeds the %d bytes left in the packet", ctf.ErrCorrupt, cl.Name, fieldName(cl, i), l, len(rec)-p-4)
		}
		p += 4
		n = int(l)
	} else if len(rec)-p < n {
		return nil, 0, errFieldTruncated(cl, i, len(rec)-p, n)
	}
	return rec[p : p+n : p+n], p + n, nil
}

func errFieldTruncated(cl *Class, i, left, need int) error {
	return fmt.Errorf("%w: event %q field %q: truncated: %d bytes left in packet, need %d", ctf.ErrCorrupt, cl.Name, fieldName(cl, i), left, need)
}

func errBadType(cl *Class, i int, t *ctf.FieldType) error {
	err := t.Validate()
	if err == nil {
		err = fmt.Errorf("%w: a %s field", ctf.ErrInvalidClass, t)
	}
	return fmt.Errorf("event %q field %q: %w", cl.Name, fieldName(cl, i), err)
}

func errUnterminated(cl *Class, i int) error {
	return fmt.Errorf("%w: event %q field %q: string not terminated before the end of the packet content", ctf.ErrCorrupt, cl.Name, fieldName(cl, i))
}

func errNoTrailer(cl *Class) error {
	return fmt.Errorf("%w: event %q: missing _truncated trailer at the end of the packet", ctf.ErrCorrupt, cl.Name)
}

// fieldName names field i of cl in errors.
func fieldName(cl *Class, i int) string {
	if i < len(cl.Fields) {
		return cl.Fields[i].Name
	}
	return fmt.Sprintf("#%d", i)
}
