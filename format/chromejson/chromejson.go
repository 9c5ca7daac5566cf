package chromejson

import (
	"bufio"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/internal/encode"
)

// NoticeTrack is the name of the track that holds the notices of lost
// events and packets.
const NoticeTrack = "tracemark"

// Writer writes events as a Chrome Trace Event Format JSON document, in
// the format described in the package documentation. Output is buffered
// and the document is only complete after Close. A Writer is not safe for
// concurrent use.
type Writer struct {
	bw      *bufio.Writer
	info    ctf.TraceInfo
	pid     uint32
	clock   encode.Clock
	buf     []byte
	started bool  // the document's head is written
	events  int   // events written (notices excluded)
	based   bool  // base is set
	base    int64 // wall-clock time of ts 0, a whole second
	lost    uint64
	tids    map[string]uint32 // provider → tid
	named   map[uint64]bool   // pid<<32|tid of the tracks whose thread_name is written
	procs   map[uint32]bool   // pids whose process_name is written
	pname   string            // the process name of SetProcess
	next    uint32            // next tid for a provider not known upfront
	classes []*class
	spans   *encode.Spans     // pairs span ends with their starts
	lanes   map[uint32][]lane // a provider's tid -> its tracks for slices
	err     error
}

// lane is one track of a provider's slices: slices that overlap go on
// tracks of their own, which share the provider's name.
type lane struct {
	tid uint32
	end int64 // end of its last slice
}

// class caches the JSON text that a class's events share.
type class struct {
	ec     *ctf.EventClass
	tid    uint32
	head   []byte   // `{"name":"http:request","cat":"http","ph":"i","s":"t","ts":`
	xhead  []byte   // `{"name":"http:request","cat":"http","ph":"X","ts":`
	tail   []byte   // `,"pid":4242,"tid":3,"args":{`
	keys   [][]byte // `"method":`, `,"path":`
	fields []string // JSON-quoted field names, for "_truncated"
}

// NewWriter returns a Writer that writes to w the events of a trace
// described by info and classes (as ctf.Reader's Info and Classes return
// them). The classes give the tracks their numbers, in the order of the
// provider names; events of other classes are accepted too.
func NewWriter(w io.Writer, info ctf.TraceInfo, classes []ctf.EventClass) *Writer {
	pw := &Writer{
		bw:    bufio.NewWriterSize(w, 64<<10),
		info:  info,
		pid:   1,
		buf:   make([]byte, 0, 256),
		tids:  map[string]uint32{NoticeTrack: 1},
		named: map[uint64]bool{},
		procs: map[uint32]bool{},
		spans: encode.NewSpans(classes),
		lanes: map[uint32][]lane{},
	}
	if v, err := strconv.ParseUint(info.Env["vpid"], 10, 32); err == nil && v > 0 {
		pw.pid = uint32(v)
	}
	var providers []string
	for i := range classes {
		providers = append(providers, encode.Provider(classes[i].Name))
	}
	slices.Sort(providers)
	pw.next = 2
	for _, p := range slices.Compact(providers) {
		pw.tid(p)
	}
	return pw
}

// tid returns the track (thread) number of a provider.
func (w *Writer) tid(provider string) uint32 {
	if t, ok := w.tids[provider]; ok {
		return t
	}
	t := w.next
	w.next++
	w.tids[provider] = t
	return t
}

// WriteEvent writes ev, an event or a notice, as an instant event. Events
// must come in timestamp order (as ctf.Reader returns them): the first
// one sets the time origin of the document. The first write error is
// returned by this and every later call.
func (w *Writer) WriteEvent(ev *ctf.Event) error {
	if w.err != nil {
		return w.err
	}
	b := w.buf[:0]
	if !w.started {
		b = w.appendHead(b)
	} else if !w.procs[w.pid] {
		b = w.appendProcessName(b)
	}
	if !w.based {
		w.based = true
		w.base = ev.Time - ev.Time%1e9
		if ev.Time%1e9 < 0 {
			w.base -= 1e9
		}
	}
	if ev.Class == nil {
		b = w.appendNotice(b, ev)
	} else {
		b = w.appendEvent(b, ev)
		w.events++
	}
	w.buf = b
	if _, err := w.bw.Write(b); err != nil {
		w.err = err
	}
	return w.err
}

// appendHead appends the start of the document and the process metadata.
func (w *Writer) appendHead(b []byte) []byte {
	w.started = true
	b = append(b, "{\"traceEvents\":[\n"...)
	name := w.pname
	if name == "" {
		name = w.info.Env["procname"]
	}
	if name == "" {
		name = w.info.Env["trace_name"]
	}
	if name == "" {
		name = "trace"
	}
	w.procs[w.pid] = true
	b = append(b, `{"name":"process_name","ph":"M","pid":`...)
	b = strconv.AppendUint(b, uint64(w.pid), 10)
	b = append(b, `,"args":{"name":`...)
	b = encode.AppendJSONString(b, name)
	b = append(b, "}}"...)
	var labels []byte
	for _, l := range [...]struct{ key, env string }{{"host", "hostname"}, {"trace", "trace_name"}} {
		if v := w.info.Env[l.env]; v != "" {
			if len(labels) > 0 {
				labels = append(labels, ", "...)
			}
			labels = append(labels, l.key+"="+v...)
		}
	}
	if len(labels) > 0 {
		b = append(b, ",\n"+`{"name":"process_labels","ph":"M","pid":`...)
		b = strconv.AppendUint(b, uint64(w.pid), 10)
		b = append(b, `,"args":{"labels":`...)
		b = encode.AppendJSONString(b, labels)
		b = append(b, "}}"...)
	}
	return b
}

// appendThreadName appends the thread_name metadata event of track tid
// the first time the track is used.
func (w *Writer) appendThreadName(b []byte, tid uint32, provider string) []byte {
	if w.named[uint64(w.pid)<<32|uint64(tid)] {
		return b
	}
	w.named[uint64(w.pid)<<32|uint64(tid)] = true
	b = append(b, ",\n"+`{"name":"thread_name","ph":"M","pid":`...)
	b = strconv.AppendUint(b, uint64(w.pid), 10)
	b = append(b, `,"tid":`...)
	b = strconv.AppendUint(b, uint64(tid), 10)
	b = append(b, `,"args":{"name":`...)
	b = encode.AppendJSONString(b, provider)
	return append(b, "}}"...)
}

func (w *Writer) appendEvent(b []byte, ev *ctf.Event) []byte {
	c := w.class(ev.Class)
	start, slice := w.spans.Pair(ev)
	if d := w.spans.Duration(ev.Class); !slice && d >= 0 && d < len(ev.Fields) && ev.Fields[d].Kind == ctf.Int && ev.Fields[d].Int >= 0 {
		start, slice = ev.Time-ev.Fields[d].Int, true
	}
	tid := c.tid
	if slice {
		start = min(start, ev.Time)
		tid = w.laneFor(c.tid, start, ev.Time)
	}
	if !w.named[uint64(w.pid)<<32|uint64(tid)] {
		b = w.appendThreadName(b, tid, encode.Provider(ev.Class.Name))
	}
	b = append(b, ",\n"...)
	if slice {
		b = append(b, c.xhead...)
		b = encode.AppendMicros(b, start-w.base)
		b = append(b, `,"dur":`...)
		b = encode.AppendMicros(b, ev.Time-start)
		b = append(b, `,"pid":`...)
		b = strconv.AppendUint(b, uint64(w.pid), 10)
		b = append(b, `,"tid":`...)
		b = strconv.AppendUint(b, uint64(tid), 10)
		b = append(b, `,"args":{`...)
	} else {
		b = append(b, c.head...)
		b = encode.AppendMicros(b, ev.Time-w.base)
		b = append(b, c.tail...)
	}
	b = encode.AppendJSONFields(b, c.keys, ev, AppendValue)
	if ev.Truncated != 0 {
		if len(ev.Fields) > 0 {
			b = append(b, ',')
		}
		b = append(b, `"_truncated":[`...)
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
	return append(b, "}}"...)
}

func (w *Writer) appendNotice(b []byte, ev *ctf.Event) []byte {
	const tid = 1
	b = w.appendThreadName(b, tid, NoticeTrack)
	if w.lost += ev.Discarded; w.lost < ev.Discarded {
		w.lost = math.MaxUint64 // saturate: a corrupt trace can claim any count
	}
	b = append(b, ",\n"+`{"name":"lost `...)
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
	b = append(b, `","cat":"`+NoticeTrack+`","ph":"i","s":"t","ts":`...)
	b = encode.AppendMicros(b, ev.Time-w.base)
	b = append(b, `,"pid":`...)
	b = strconv.AppendUint(b, uint64(w.pid), 10)
	b = append(b, `,"tid":1,"args":{"stream":`...)
	b = strconv.AppendUint(b, uint64(ev.Stream), 10)
	b = append(b, `,"cpu":`...)
	b = strconv.AppendUint(b, uint64(ev.CPU), 10)
	b = append(b, `,"lost_events":`...)
	b = appendUint(b, ev.Discarded)
	b = append(b, `,"lost_packets":`...)
	b = appendUint(b, ev.LostPackets)
	b = append(b, `,"until":"`...)
	b = w.clock.Append(b, ev.EndTime)
	return append(b, `"}}`...)
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
	provider := encode.Provider(ec.Name)
	c := &class{ec: ec, tid: w.tid(provider)}
	c.head = append(c.head, `{"name":`...)
	c.head = encode.AppendJSONString(c.head, ec.Name)
	c.head = append(c.head, `,"cat":`...)
	c.head = encode.AppendJSONString(c.head, provider)
	c.xhead = append(slices.Clip(c.head), `,"ph":"X","ts":`...)
	c.head = append(c.head, `,"ph":"i","s":"t","ts":`...)
	c.tail = append(c.tail, `,"pid":`...)
	c.tail = strconv.AppendUint(c.tail, uint64(w.pid), 10)
	c.tail = append(c.tail, `,"tid":`...)
	c.tail = strconv.AppendUint(c.tail, uint64(c.tid), 10)
	c.tail = append(c.tail, `,"args":{`...)
	c.keys, c.fields = encode.JSONKeys(ec.Fields)
	w.classes[id] = c
	return c
}

// appendUint appends v as a JSON number if the Perfetto trace processor
// keeps it exact (it stores integer arguments as int64), else as a JSON
// string of its decimal digits.
func appendUint(b []byte, v uint64) []byte {
	if v <= math.MaxInt64 {
		return strconv.AppendUint(b, v, 10)
	}
	b = append(b, '"')
	b = strconv.AppendUint(b, v, 10)
	return append(b, '"')
}

// AppendValue appends the JSON form of a field value as an argument of a
// trace event: integers as JSON numbers, except unsigned values above
// 2^63-1, which are strings of decimal digits; finite floats as numbers
// and NaN and the infinities as the strings "NaN", "Infinity" and
// "-Infinity" (bits is the field's width, 32 or 64); strings as JSON
// strings; bytes as a JSON string of lower-case hexadecimal.
func AppendValue(b []byte, v ctf.Value, bits int) []byte {
	switch v.Kind {
	case ctf.Int:
		return strconv.AppendInt(b, v.Int, 10)
	case ctf.Uint:
		return appendUint(b, v.Uint)
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

// Close completes the JSON document: it ends the traceEvents array, adds
// the otherData object (trace start, environment, counts) and flushes the
// output. It does not close the underlying io.Writer. A Writer that
// received no events writes a document with no trace events. Closing
// again does nothing.
func (w *Writer) Close() error {
	if w.err == ErrClosed {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	b := w.buf[:0]
	if !w.started {
		b = w.appendHead(b)
	}
	b = append(b, "\n],\n"+`"otherData":{"converter":"tracemark"`...)
	if w.based {
		b = append(b, `,"trace_start":"`...)
		b = w.clock.Append(b, w.base)
		b = append(b, `","trace_start_ns":"`...)
		b = strconv.AppendInt(b, w.base, 10)
		b = append(b, '"')
	}
	b = append(b, `,"clock":`...)
	b = encode.AppendJSONString(b, w.info.Clock.Name)
	keys := make([]string, 0, len(w.info.Env))
	for k := range w.info.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = append(b, ',')
		b = encode.AppendJSONString(b, "env_"+k)
		b = append(b, ':')
		b = encode.AppendJSONString(b, w.info.Env[k])
	}
	b = append(b, `,"events":`...)
	b = strconv.AppendInt(b, int64(w.events), 10)
	b = append(b, `,"lost_events":`...)
	b = appendUint(b, w.lost)
	b = append(b, "}}\n"...)
	w.buf = b
	if _, err := w.bw.Write(b); err != nil {
		w.err = err
		return err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
		return err
	}
	w.err = ErrClosed
	return nil
}

// ErrClosed is returned by WriteEvent after Close: the document is
// complete.
var ErrClosed = errors.New("chromejson: write after Close")

// appendProcessName appends the process_name metadata of the process
// that SetProcess named, the first time it has an event.
func (w *Writer) appendProcessName(b []byte) []byte {
	w.procs[w.pid] = true
	b = append(b, ",\n"+`{"name":"process_name","ph":"M","pid":`...)
	b = strconv.AppendUint(b, uint64(w.pid), 10)
	b = append(b, `,"args":{"name":`...)
	b = encode.AppendJSONString(b, w.pname)
	return append(b, "}}"...)
}

// SetProcess makes the next events belong to process pid named name: for
// traces of many processes merged into one timeline, each process gets
// its own group of tracks. A pid that does not fit 32 bits is ignored.
func (w *Writer) SetProcess(pid int64, name string) {
	if pid <= 0 || pid > math.MaxUint32 {
		return
	}
	w.pid, w.pname = uint32(pid), name
}

// laneFor returns the thread of a slice from start to end of the provider
// whose track is thread tid: the first of the provider's threads whose
// slices all ended before start, or a new one of the same name. Slices
// on one thread must nest, and a span's time says nothing of nesting.
func (w *Writer) laneFor(tid uint32, start, end int64) uint32 {
	ls := w.lanes[tid]
	if ls == nil {
		ls = []lane{{tid: tid, end: math.MinInt64}}
	}
	i := 0
	for i < len(ls) && ls[i].end >= start {
		i++
	}
	if i == len(ls) {
		ls = append(ls, lane{tid: w.next})
		w.next++
	}
	ls[i].end = end
	w.lanes[tid] = ls
	return ls[i].tid
}
