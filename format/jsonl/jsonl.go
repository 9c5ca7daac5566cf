package jsonl

import (
	"bufio"
	"io"
	"strconv"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/internal/encode"
)

// Writer writes events as JSON Lines, in the format described in the
// package documentation. Output is buffered: call Close at the end. A
// Writer is not safe for concurrent use.
type Writer struct {
	bw      *bufio.Writer
	clock   encode.Clock
	buf     []byte
	started bool
	first   int64
	classes []*class
	err     error
	proc    []byte // `,"pid":4242,"procname":"app"`, set by SetProcess
}

// class caches the JSON text that a class's lines share.
type class struct {
	ec     *ctf.EventClass
	head   []byte   // `,"event":"http:request","provider":"http","fields":{`
	keys   [][]byte // `"method":`, `,"path":`
	fields []string // JSON-quoted field names, for "truncated"
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 64<<10), buf: make([]byte, 0, 256)}
}

// WriteEvent writes one line for ev, an event or a notice. rel_ns counts
// from the first event written. The first write error is returned by this
// and every later call.
func (w *Writer) WriteEvent(ev *ctf.Event) error {
	if w.err != nil {
		return w.err
	}
	if !w.started {
		w.started, w.first = true, ev.Time
	}
	b := append(w.buf[:0], `{"ts_ns":`...)
	b = strconv.AppendInt(b, ev.Time, 10)
	b = append(b, `,"time":"`...)
	b = w.clock.Append(b, ev.Time)
	b = append(b, `","rel_ns":`...)
	b = strconv.AppendInt(b, ev.Time-w.first, 10)
	b = append(b, `,"stream":`...)
	b = strconv.AppendUint(b, uint64(ev.Stream), 10)
	b = append(b, `,"cpu":`...)
	b = strconv.AppendUint(b, uint64(ev.CPU), 10)
	b = append(b, w.proc...)
	if len(ev.Context) > 0 {
		// The stream event context (record --context).
		b = append(b, `,"context":{`...)
		for i, v := range ev.Context {
			if i > 0 {
				b = append(b, ',')
			}
			bits := 64
			name := "?"
			if i < len(ev.ContextFields) {
				name, bits = ev.ContextFields[i].Name, ev.ContextFields[i].Type.Bits
			}
			b = encode.AppendJSONString(b, name)
			b = append(b, ':')
			b = AppendValue(b, v, bits)
		}
		b = append(b, '}')
	}
	if ev.Class == nil {
		b = append(b, `,"lost_events":`...)
		b = strconv.AppendUint(b, ev.Discarded, 10)
		b = append(b, `,"lost_packets":`...)
		b = strconv.AppendUint(b, ev.LostPackets, 10)
		b = append(b, `,"end_ts_ns":`...)
		b = strconv.AppendInt(b, ev.EndTime, 10)
		b = append(b, `,"end_time":"`...)
		b = w.clock.Append(b, ev.EndTime)
		b = append(b, `"}`...)
	} else {
		b = w.appendEvent(b, ev)
	}
	b = append(b, '\n')
	w.buf = b
	if _, err := w.bw.Write(b); err != nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) appendEvent(b []byte, ev *ctf.Event) []byte {
	c := w.class(ev.Class)
	b = append(b, c.head...)
	b = encode.AppendJSONFields(b, c.keys, ev, AppendValue)
	b = append(b, '}')
	if ev.Truncated != 0 {
		b = append(b, `,"truncated":[`...)
		n := 0
		for i, name := range c.fields {
			if i < 8 && ev.Truncated&(1<<i) != 0 {
				if n > 0 {
					b = append(b, ',')
				}
				b = append(b, name...)
				n++
			}
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// class returns the cached rendering of ec.
func (w *Writer) class(ec *ctf.EventClass) *class {
	id := int(ec.ID)
	if id < len(w.classes) {
		if c := w.classes[id]; c != nil && c.ec == ec {
			return c
		}
	} else {
		w.classes = append(w.classes, make([]*class, id+1-len(w.classes))...)
	}
	c := &class{ec: ec}
	c.head = append(c.head, `,"event":`...)
	c.head = encode.AppendJSONString(c.head, ec.Name)
	c.head = append(c.head, `,"provider":`...)
	c.head = encode.AppendJSONString(c.head, encode.Provider(ec.Name))
	c.head = append(c.head, `,"fields":{`...)
	c.keys, c.fields = encode.JSONKeys(ec.Fields)
	w.classes[id] = c
	return c
}

// AppendValue appends the JSON form of a field value: integers as exact
// JSON numbers, finite floats as numbers and NaN and the infinities as
// the strings "NaN", "Infinity" and "-Infinity" (bits is the field's
// width, 32 or 64), strings as JSON strings, bytes as a JSON string of
// lower-case hexadecimal.
func AppendValue(b []byte, v ctf.Value, bits int) []byte {
	switch v.Kind {
	case ctf.Int:
		return strconv.AppendInt(b, v.Int, 10)
	case ctf.Uint:
		return strconv.AppendUint(b, v.Uint, 10)
	case ctf.Float:
		return encode.AppendJSONFloat(b, v.Float, bits)
	case ctf.String:
		return encode.AppendJSONString(b, v.Bytes)
	case ctf.Bytes:
		b = append(b, '"')
		b = encode.AppendHex(b, v.Bytes)
		return append(b, '"')
	}
	return append(b, "null"...)
}

// Close flushes the buffered output. It does not close the underlying
// io.Writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	w.err = w.bw.Flush()
	return w.err
}

// SetProcess makes the next lines carry "pid" and "procname" keys after
// "cpu": for traces of many processes merged into one timeline. A zero
// pid and empty name remove them.
func (w *Writer) SetProcess(pid int64, name string) {
	w.proc = w.proc[:0]
	if pid == 0 && name == "" {
		return
	}
	w.proc = append(w.proc, `,"pid":`...)
	w.proc = strconv.AppendInt(w.proc, pid, 10)
	w.proc = append(w.proc, `,"procname":`...)
	w.proc = encode.AppendJSONString(w.proc, name)
}
