package text

import (
	"bufio"
	"io"
	"strconv"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/internal/encode"
)

// Option configures NewWriter. Options are made by the With functions of
// this package; without options a Writer prints wall-clock time in UTC.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// options is a Writer's configuration.
type options struct {
	Relative bool
	Location *time.Location
}

// WithRelative prints, instead of the wall-clock time (the default), the
// seconds since the first event written (ftrace style:
// "[     0.000000070]").
func WithRelative() Option { return optionFunc(func(o *options) { o.Relative = true }) }

// WithLocation sets the time zone of wall-clock timestamps; the default,
// and a nil loc, is UTC.
func WithLocation(loc *time.Location) Option {
	return optionFunc(func(o *options) { o.Location = loc })
}

// Writer writes events as lines of text, in the format described in the
// package documentation. Output is buffered: call Close at the end. A
// Writer is not safe for concurrent use.
type Writer struct {
	bw      *bufio.Writer
	opts    options
	clock   encode.Clock
	buf     []byte
	started bool
	first   int64 // time of the first event
	prev    int64 // time of the previous line
	classes []*class
	err     error
	proc    []byte // "procname:(pid) ", set by SetProcess
}

// class caches what a class's lines share.
type class struct {
	ec     *ctf.EventClass
	name   []byte   // "http:request:"
	fields [][]byte // " method="
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer, with ...Option) *Writer {
	var opts options
	for _, o := range with {
		if o != nil {
			o.apply(&opts)
		}
	}
	return &Writer{
		bw:    bufio.NewWriterSize(w, 64<<10),
		opts:  opts,
		clock: encode.Clock{Location: opts.Location},
		buf:   make([]byte, 0, 256),
	}
}

// WriteEvent writes one line for ev, an event or a notice. Events must
// come in timestamp order (as ctf.Reader returns them) for the deltas to
// be meaningful. The first write error is returned by this and every
// later call.
func (w *Writer) WriteEvent(ev *ctf.Event) error {
	if w.err != nil {
		return w.err
	}
	b := w.buf[:0]
	if !w.started {
		w.started = true
		w.first, w.prev = ev.Time, ev.Time
		b = append(b, '[')
		b = w.appendTime(b, ev.Time)
		b = append(b, "] (+?.?????????) "...)
	} else {
		b = append(b, '[')
		b = w.appendTime(b, ev.Time)
		b = append(b, "] ("...)
		d := ev.Time - w.prev
		if d >= 0 {
			b = append(b, '+')
		}
		b = encode.AppendSeconds(b, d, 0)
		b = append(b, ") "...)
	}
	w.prev = ev.Time
	b = append(b, 's')
	b = strconv.AppendUint(b, uint64(ev.Stream), 10)
	b = append(b, " cpu"...)
	b = strconv.AppendUint(b, uint64(ev.CPU), 10)
	b = append(b, ' ')
	b = append(b, w.proc...)
	if ev.Class == nil {
		b = w.appendNotice(b, ev)
	} else {
		b = w.appendFields(b, ev)
	}
	b = append(b, '\n')
	w.buf = b
	if _, err := w.bw.Write(b); err != nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) appendTime(b []byte, ns int64) []byte {
	if w.opts.Relative {
		return encode.AppendSeconds(b, ns-w.first, 6)
	}
	return w.clock.Append(b, ns)
}

func (w *Writer) appendNotice(b []byte, ev *ctf.Event) []byte {
	b = append(b, "[lost "...)
	if ev.Discarded > 0 {
		b = appendCount(b, ev.Discarded, "event")
		if ev.LostPackets > 0 {
			b = append(b, " and "...)
		}
	}
	if ev.LostPackets > 0 {
		b = appendCount(b, ev.LostPackets, "packet")
	}
	b = append(b, " on stream "...)
	b = strconv.AppendUint(b, uint64(ev.Stream), 10)
	b = append(b, " until "...)
	if w.opts.Relative {
		b = encode.AppendSeconds(b, ev.EndTime-w.first, 0)
	} else {
		b = w.clock.Append(b, ev.EndTime)
	}
	return append(b, ']')
}

// appendCount appends "1 event" or "12 events".
func appendCount(b []byte, n uint64, what string) []byte {
	b = strconv.AppendUint(b, n, 10)
	b = append(b, ' ')
	b = append(b, what...)
	if n != 1 {
		b = append(b, 's')
	}
	return b
}

func (w *Writer) appendFields(b []byte, ev *ctf.Event) []byte {
	c := w.class(ev.Class)
	if len(ev.Context) > 0 {
		// The stream event context (record --context), before the name.
		b = append(b, '[')
		for i, v := range ev.Context {
			if i > 0 {
				b = append(b, ' ')
			}
			bits := 64
			if i < len(ev.ContextFields) {
				b = append(b, ev.ContextFields[i].Name...)
				bits = ev.ContextFields[i].Type.Bits
			}
			b = append(b, '=')
			b = AppendValue(b, v, bits)
		}
		b = append(b, "] "...)
	}
	b = append(b, c.name...)
	for i, v := range ev.Fields {
		if i < len(c.fields) {
			b = append(b, c.fields[i]...)
		} else {
			b = append(b, " ?="...)
		}
		bits, meaning := 64, ctf.Number
		if i < len(ev.Class.Fields) {
			bits, meaning = ev.Class.Fields[i].Type.Bits, ev.Class.Fields[i].Meaning
		}
		switch {
		case meaning == ctf.Boolean && v.Kind == ctf.Uint:
			b = strconv.AppendBool(b, v.Uint != 0)
		case meaning == ctf.Duration && v.Kind == ctf.Int:
			b = append(b, time.Duration(v.Int).String()...)
		default:
			b = AppendValue(b, v, bits)
		}
		if i < 8 && ev.Truncated&(1<<i) != 0 {
			b = append(b, "[truncated]"...)
		}
	}
	return b
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
	c := &class{ec: ec, name: append([]byte(ec.Name), ':')}
	for _, f := range ec.Fields {
		c.fields = append(c.fields, []byte(" "+f.Name+"="))
	}
	w.classes[id] = c
	return c
}

// AppendValue appends the text form of a field value: integers in
// decimal, floats as described in the package documentation (bits is the
// field's width, 32 or 64), strings quoted with Go syntax, bytes as
// lower-case hexadecimal between angle brackets.
func AppendValue(b []byte, v ctf.Value, bits int) []byte {
	switch v.Kind {
	case ctf.Int:
		return strconv.AppendInt(b, v.Int, 10)
	case ctf.Uint:
		return strconv.AppendUint(b, v.Uint, 10)
	case ctf.Float:
		return encode.AppendFloat(b, v.Float, bits)
	case ctf.String:
		return encode.AppendQuote(b, v.Bytes)
	case ctf.Bytes:
		b = append(b, '<')
		b = encode.AppendHex(b, v.Bytes)
		return append(b, '>')
	}
	return append(b, '?')
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

// SetProcess makes the next lines name a process, as
// "procname:(pid) " after the cpu, the way Babeltrace names them: for
// traces of many processes merged into one timeline. A zero pid and empty
// name remove the label.
func (w *Writer) SetProcess(pid int64, name string) {
	w.proc = w.proc[:0]
	if pid == 0 && name == "" {
		return
	}
	w.proc = append(w.proc, name...)
	w.proc = append(w.proc, ":("...)
	w.proc = strconv.AppendInt(w.proc, pid, 10)
	w.proc = append(w.proc, ") "...)
}
