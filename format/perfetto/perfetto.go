package perfetto

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/internal/encode"
)

// FieldRef names a field of an event class: Event is the full event name
// ("http:request_done"), Field the field name ("latency").
type FieldRef struct {
	Event, Field string
}

// String returns "event:field".
func (r FieldRef) String() string { return r.Event + ":" + r.Field }

// ParseFieldRef parses "event:field", splitting at the last ':'
// ("http:request_done:latency" is field latency of http:request_done).
func ParseFieldRef(s string) (FieldRef, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return FieldRef{}, fmt.Errorf("%w: %q: want EVENT:FIELD, as in http:request_done:latency", ErrBadField, s)
	}
	return FieldRef{Event: s[:i], Field: s[i+1:]}, nil
}

// ErrBadField is returned for a FieldRef that names no numeric field of
// the trace's classes, or that is malformed.
var ErrBadField = errors.New("bad field reference")

// Option configures NewWriter and NewMultiWriter. Options are made by the
// With functions of this package; without options a Writer draws no
// counter track and takes durations from the markers' declarations (see
// WithDurations). A field an option names that the trace does not have,
// or that has the wrong type, makes the constructor fail with an error
// wrapping ErrBadField and naming the option.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// options is a Writer's configuration.
type options struct {
	Counters  []FieldRef
	Durations []FieldRef // nil: the default; empty: every event an instant
}

// WithCounters draws the numeric fields refs as counter tracks, one
// track per field, named "event field" ("http:request_done latency");
// the event is written as usual too. By default there is none; several
// WithCounters add up.
func WithCounters(refs ...FieldRef) Option {
	return optionFunc(func(o *options) { o.Counters = append(o.Counters, refs...) })
}

// WithDurations names the signed integer fields that hold a duration in
// nanoseconds that ends at the event: such an event is a slice that
// starts that long before the event and ends at it. By default the
// duration fields of the markers' span declarations are
// (ctf.EventClass.Span, marker.SpanDuration), and for markers without a
// declaration every 64-bit signed integer field named "latency" or
// "duration" (the first of an event's, if it has several). WithDurations
// replaces that default: with no refs, every event is an instant, except
// the ends of declared start/end pairs. Several WithDurations add up.
func WithDurations(refs ...FieldRef) Option {
	return optionFunc(func(o *options) {
		o.Durations = append(o.Durations, refs...)
		if o.Durations == nil {
			o.Durations = []FieldRef{} // no refs: every event an instant
		}
	})
}

// newOptions applies with.
func newOptions(with []Option) options {
	var o options
	for _, w := range with {
		if w != nil {
			w.apply(&o)
		}
	}
	return o
}

// durationFieldNames are the names of the 64-bit signed fields taken as
// durations without WithDurations.
var durationFieldNames = []string{"latency", "duration"}

// NoticeTrack is the name of the track that groups the per-stream tracks
// of lost data.
const NoticeTrack = "tracemark"

// sequenceID is the trusted_packet_sequence_id of every packet of a
// Writer: the writer is one sequence, whose incremental state (the
// interned names and strings, and the packet defaults that put the
// timestamps on incrementalClock) is cleared by its first packet and
// never again. A MultiWriter gives each process a sequence of its own.
const sequenceID = 1

// incrementalClock is the clock of every timestamped packet of a
// Writer: a sequence-scoped clock (ids 64 to 127 are), incremental, so
// that a packet's timestamp is the delta from the previous timestamped
// packet's on the sequence, in file order. Writer.clock follows it.
const incrementalClock = 64

// Interning limits: strings longer than maxInternLen are written inline,
// and after maxInterned interned values new ones are written inline, so
// that a trace of unique values does not grow the table without bound.
const (
	maxInternLen = 64
	maxInterned  = 1 << 16
)

// Writer writes events as a Perfetto protobuf trace (a sequence of
// TracePacket messages), in the format described in the package
// documentation. Output is buffered and only complete after Close. A
// Writer is not safe for concurrent use.
type Writer struct {
	w       io.Writer
	out     []byte // output not yet written to w
	info    ctf.TraceInfo
	opts    options
	pid     uint32
	seq     uint64 // trusted_packet_sequence_id
	in      []byte // InternedData of the next packet
	clock   int64  // incrementalClock: the last timestamp written
	started bool
	err     error

	nextUUID  uint64
	processID uint64 // uuid of the process track
	providers map[string]*track
	streams   map[uint32]*track
	notices   *track // parent of the stream tracks
	counters  int    // counter tracks declared
	classes   []*class
	spans     *encode.Spans // pairs span ends with their starts

	// Interned names: event names, categories and annotation names share
	// no table in Perfetto, but one counter per table is enough.
	nameIIDs  map[string]uint64
	catIIDs   map[string]uint64
	annotIIDs map[string]uint64
	strIIDs   map[string]uint64
	short     *shortTable // the short ones of strIIDs
	strs      []string    // interned string values, by iid-1
	internBuf []byte      // scratch for strings made valid UTF-8
}

// track is a group of tracks of the same name: lane 0 and more lanes for
// slices that overlap (the UI shows them merged as one track, by name).
type track struct {
	name   string
	parent uint64
	rank   int  // sibling_order_rank
	order  bool // order the children by rank
	// The lanes: their track uuids, and the end of the last slice of
	// each, apart for laneFor's scan.
	uuids []uint64
	ends  []int64
}

// class caches what the events of a class share.
type class struct {
	ec        *ctf.EventClass
	provider  *track
	head      []byte // its events' category_iids and name_iid fields
	fieldIIDs []uint64
	last      []lastString // per field, the last interned string value
	duration  int          // index of the duration field, or -1
	counters  []counter
	span      *encode.SpanClass // what its events do in spans
}

// lastString is a string value and its interning id, and whether
// comparing the next value with it is worth it: score counts up by
// lastHit when a value repeats the last and down by one when it does not,
// between 0 (skip the comparison) and lastMax. Fields of few values
// (methods, operations) repeat often; fields of many (paths, keys) almost
// never, and comparing each value first would only add to the lookup.
type lastString struct {
	s     string
	iid   uint64
	score int32
}

const (
	lastHit = 4 // worth it above one repeat in five values
	lastMax = 64
)

type counter struct {
	field int
	uuid  uint64
}

// NewWriter returns a Writer that writes to w the events of a trace
// described by info and classes (as ctf.Reader's Info and Classes return
// them). Tracks are declared upfront for the providers of the classes, in
// the order of their names; events of other classes are accepted too.
// The fields that opts names must be numeric fields of classes (signed
// integers for Durations), else the error wraps ErrBadField.
func NewWriter(w io.Writer, info ctf.TraceInfo, classes []ctf.EventClass, with ...Option) (*Writer, error) {
	opts := newOptions(with)
	if err := checkRefs(opts, classes); err != nil {
		return nil, err
	}
	pid := uint32(1)
	if v, err := strconv.ParseUint(info.Env["vpid"], 10, 31); err == nil && v > 0 {
		pid = uint32(v)
	}
	pw := newWriter(w, info, classes, opts, pid, sequenceID, 1)
	return pw, pw.err
}

// checkRefs checks the fields that opts names against classes.
func checkRefs(opts options, classes []ctf.EventClass) error {
	for _, ref := range opts.Counters {
		if err := checkRef(ref, classes, false); err != nil {
			return fmt.Errorf("WithCounters: %w", err)
		}
	}
	for _, ref := range opts.Durations {
		if err := checkRef(ref, classes, true); err != nil {
			return fmt.Errorf("WithDurations: %w", err)
		}
	}
	return nil
}

// newWriter returns a Writer for process pid on sequence seq, whose track
// uuids start at uuid, and writes its first packets.
func newWriter(w io.Writer, info ctf.TraceInfo, classes []ctf.EventClass, opts options, pid uint32, seq, uuid uint64) *Writer {
	pw := &Writer{
		w:         w,
		out:       make([]byte, 0, flushSize+4096),
		info:      info,
		opts:      opts,
		pid:       pid,
		seq:       seq,
		providers: map[string]*track{},
		streams:   map[uint32]*track{},
		nameIIDs:  map[string]uint64{},
		catIIDs:   map[string]uint64{},
		annotIIDs: map[string]uint64{},
		strIIDs:   map[string]uint64{},
		short:     newShortTable(),
		nextUUID:  uuid,
		spans:     encode.NewSpans(classes),
	}
	var providers []string
	for i := range classes {
		providers = append(providers, encode.Provider(classes[i].Name))
	}
	slices.Sort(providers)
	pw.start()
	for _, p := range slices.Compact(providers) {
		pw.provider(p)
	}
	return pw
}

// checkRef checks that ref names a numeric field (a signed integer one
// if signed) of one of classes.
func checkRef(ref FieldRef, classes []ctf.EventClass, signed bool) error {
	for i := range classes {
		if classes[i].Name != ref.Event {
			continue
		}
		for _, f := range classes[i].Fields {
			if f.Name != ref.Field {
				continue
			}
			switch {
			case signed && f.Type.Kind != ctf.Int:
				return fmt.Errorf("%w: %s is %s, not a signed integer duration", ErrBadField, ref, f.Type)
			case f.Type.Kind != ctf.Int && f.Type.Kind != ctf.Uint && f.Type.Kind != ctf.Float:
				return fmt.Errorf("%w: %s is %s, not a number", ErrBadField, ref, f.Type)
			}
			return nil
		}
		return fmt.Errorf("%w: %s: event %s has no field %q", ErrBadField, ref, ref.Event, ref.Field)
	}
	return fmt.Errorf("%w: %s: the trace has no event %q", ErrBadField, ref, ref.Event)
}

// start writes the first packet, which clears the sequence's incremental
// state, and the process track.
func (w *Writer) start() {
	w.started = true
	b, at := beginMessage(w.out, fTracePacket)
	b = appendVarintField(b, fPacketSequenceID, w.seq)
	b = appendVarintField(b, fPacketSequenceFlags, seqIncrementalStateCleared)
	b = appendVarintField(b, fPacketFirstOnSequence, 1)
	// The packet defaults, part of the incremental state, put every
	// timestamp on the incremental clock, and the clock snapshot says
	// that it starts at 0 when BOOTTIME (the trace clock, in which the
	// times were written before) does. A clock snapshot packet carries
	// nothing else, so the process track comes in a packet of its own.
	var m int
	b, m = beginMessage(b, fPacketDefaults)
	b = appendVarintField(b, fDefaultsClockID, incrementalClock)
	b = endMessage(b, m)
	b, m = beginMessage(b, fPacketClockSnapshot)
	b = appendClock(b, clockBoottime, false)
	b = appendClock(b, incrementalClock, true)
	b = endMessage(b, m)
	b = endMessage(b, at)
	w.clock = 0

	b, at = beginMessage(b, fTracePacket)
	b = appendVarintField(b, fPacketSequenceID, w.seq)
	w.processID = w.newUUID()
	b, d := beginMessage(b, fPacketTrackDescriptor)
	b = appendVarintField(b, fTrackUUID, w.processID)
	b = appendVarintField(b, fTrackChildOrder, childOrderExplicit)
	b, p := beginMessage(b, fTrackProcess)
	b = appendVarintField(b, fProcessPID, uint64(w.pid))
	name := w.info.Env["procname"]
	if name == "" {
		name = w.info.Env["trace_name"]
	}
	if name == "" {
		name = "trace"
	}
	b = appendBytesField(b, fProcessName, validUTF8(name))
	for _, l := range [...]struct{ key, env string }{{"host", "hostname"}, {"trace", "trace_name"}} {
		if v := w.info.Env[l.env]; v != "" {
			b = appendBytesField(b, fProcessLabels, validUTF8(l.key+"="+v))
		}
	}
	b = endMessage(b, p)
	b = endMessage(b, d)
	w.out = endMessage(b, at)
}

// appendClock appends a ClockSnapshot.Clock of clock id at time 0.
func appendClock(b []byte, id uint64, incremental bool) []byte {
	b, at := beginMessage(b, fSnapshotClock)
	b = appendVarintField(b, fClockID, id)
	b = appendVarintField(b, fClockTimestamp, 0)
	if incremental {
		b = appendVarintField(b, fClockIncremental, 1)
	}
	return endMessage(b, at)
}

func (w *Writer) newUUID() uint64 {
	u := w.nextUUID
	w.nextUUID++
	return u
}

// descriptor writes the TrackDescriptor of a new track; counterUnit is
// -1 for a track of slices and instants, else the unit of a counter
// track (0 for none).
func (w *Writer) descriptor(uuid, parent uint64, name, description string, rank int, order bool, counterUnit int) {
	b, at := beginMessage(w.out, fTracePacket)
	b = appendVarintField(b, fPacketSequenceID, w.seq)
	b, d := beginMessage(b, fPacketTrackDescriptor)
	b = appendVarintField(b, fTrackUUID, uuid)
	b = appendVarintField(b, fTrackParentUUID, parent)
	b = appendBytesField(b, fTrackName, validUTF8(name))
	if description != "" {
		b = appendBytesField(b, fTrackDescription, validUTF8(description))
	}
	b = appendVarintField(b, fTrackSiblingOrder, uint64(int64(rank)))
	if order {
		b = appendVarintField(b, fTrackChildOrder, childOrderExplicit)
	}
	if counterUnit >= 0 {
		var c int
		b, c = beginMessage(b, fTrackCounter)
		if counterUnit > 0 {
			b = appendVarintField(b, fCounterUnit, uint64(counterUnit))
		}
		b = endMessage(b, c)
	}
	b = endMessage(b, d)
	w.out = endMessage(b, at)
	w.maybeFlush()
}

// Sibling order ranks under the process track: providers first (in name
// order, as they are created), then counters, then lost data.
const (
	rankProvider = 0
	rankCounter  = 1000
	rankNotices  = 2000
)

// provider returns the track group of a provider, declaring it the first
// time.
func (w *Writer) provider(name string) *track {
	if t := w.providers[name]; t != nil {
		return t
	}
	t := &track{name: name, parent: w.processID, rank: rankProvider + len(w.providers)}
	w.providers[name] = t
	w.addLane(t, "events of provider "+name)
	return t
}

// addLane declares one more track of group t, which ends no slice yet,
// and returns its index.
func (w *Writer) addLane(t *track, description string) int {
	uuid := w.newUUID()
	w.descriptor(uuid, t.parent, t.name, description, t.rank, t.order, -1)
	t.uuids = append(t.uuids, uuid)
	t.ends = append(t.ends, math.MinInt64)
	return len(t.uuids) - 1
}

// laneFor returns the track of group t for a slice from start to end:
// the first whose slices all ended before start, so that slices on one
// track never overlap (nested slices would be shown as parent and child,
// which a duration does not say).
func (w *Writer) laneFor(t *track, start, end int64) uint64 {
	// Groups of overlapping slices make a hundred lanes and more, and the
	// first free one is often dozens in: test four ends a branch.
	ends := t.ends
	i := 0
	for ; i+4 <= len(ends); i += 4 {
		if e := ends[i : i+4 : i+4]; e[0] < start || e[1] < start || e[2] < start || e[3] < start {
			break
		}
	}
	for ; i < len(ends); i++ {
		if ends[i] < start {
			ends[i] = end
			return t.uuids[i]
		}
	}
	i = w.addLane(t, "")
	t.ends[i] = end
	return t.uuids[i]
}

// stream returns the lost-data track group of a stream.
func (w *Writer) stream(ev *ctf.Event) *track {
	if t := w.streams[ev.Stream]; t != nil {
		return t
	}
	if w.notices == nil {
		w.notices = &track{name: NoticeTrack, parent: w.processID, rank: rankNotices, order: true}
		w.addLane(w.notices, "lost events and packets, per stream (per P)")
	}
	t := &track{name: "stream " + strconv.FormatUint(uint64(ev.Stream), 10) + " (P" + strconv.FormatUint(uint64(ev.CPU), 10) + ")",
		parent: w.notices.uuids[0], rank: int(ev.Stream)}
	w.streams[ev.Stream] = t
	w.addLane(t, "lost events and packets of data stream channel0_"+strconv.FormatUint(uint64(ev.Stream), 10))
	return t
}

// noClass stands in the class cache (Writer.classes, by id) for the ids
// without a class yet.
var noClass class

// newClass makes the description of ec and caches it.
func (w *Writer) newClass(ec *ctf.EventClass) *class {
	id := int(ec.ID)
	for id >= len(w.classes) {
		w.classes = append(w.classes, &noClass)
	}
	provider := encode.Provider(ec.Name)
	c := &class{ec: ec, provider: w.provider(provider), duration: -1}
	nameIID := w.intern(w.nameIIDs, fInternedEventNames, ec.Name)
	catIID := w.intern(w.catIIDs, fInternedCategories, provider)
	c.head = appendVarintField(c.head, fEventCategoryIIDs, catIID)
	c.head = appendVarintField(c.head, fEventNameIID, nameIID)
	for _, f := range ec.Fields {
		c.fieldIIDs = append(c.fieldIIDs, w.intern(w.annotIIDs, fInternedAnnotNames, f.Name))
	}
	c.last = make([]lastString, len(ec.Fields))
	c.span = w.spans.Class(ec)
	if w.opts.Durations == nil && ec.Span != nil {
		c.duration = w.spans.Duration(ec) // as declared (-1 for a pair's end)
	} else {
		for i, f := range ec.Fields {
			if f.Type.Kind != ctf.Int {
				continue
			}
			if w.opts.Durations == nil && f.Type.Bits == 64 && slices.Contains(durationFieldNames, f.Name) ||
				slices.Contains(w.opts.Durations, FieldRef{ec.Name, f.Name}) {
				c.duration = i
				break
			}
		}
	}
	for i, f := range ec.Fields {
		if !slices.Contains(w.opts.Counters, FieldRef{ec.Name, f.Name}) {
			continue
		}
		switch f.Type.Kind {
		case ctf.Int, ctf.Uint, ctf.Float:
		default:
			continue
		}
		uuid := w.newUUID()
		unit := 0
		if i == c.duration {
			unit = unitTimeNS
		}
		w.counters++
		w.descriptor(uuid, w.processID, ec.Name+" "+f.Name, "field "+f.Name+" of "+ec.Name, rankCounter+w.counters, false, unit)
		c.counters = append(c.counters, counter{field: i, uuid: uuid})
	}
	w.classes[id] = c
	return c
}

// intern returns the interning id of s in table m, adding it to the
// packet's InternedData (field num) the first time.
func (w *Writer) intern(m map[string]uint64, num protowire.Number, s string) uint64 {
	if iid, ok := m[s]; ok {
		return iid
	}
	iid := uint64(len(m) + 1)
	m[s] = iid
	w.in, _ = w.appendInterned(w.in, num, iid, s)
	return iid
}

func (w *Writer) appendInterned(b []byte, num protowire.Number, iid uint64, s string) ([]byte, int) {
	b, at := beginMessage(b, num)
	b = appendVarintField(b, fInternedIID, iid)
	b = appendBytesField(b, fInternedName, validUTF8(s))
	return endMessage(b, at), at
}

// appendString appends a string value (made valid UTF-8) as an interned
// string_value_iid, or inline as string_value if it is too long or the
// table is full. Short strings are looked up in w.short; for the others
// (and the short ones it does not settle) last caches the field's
// previous interned value: values of some fields often repeat, and
// comparing is cheaper than a map lookup.
func (w *Writer) appendString(b []byte, last *lastString, s []byte) []byte {
	if len(s) <= maxShort {
		// Only valid UTF-8 is interned, so a value found is valid, and
		// the table has every short string interned unless it spilled.
		a, k := shortKey(s)
		iid, ok := w.short.find(a, k, len(s))
		if !ok && !w.short.spilled && len(w.strIIDs) < maxInterned && utf8.Valid(s) {
			iid, ok = w.internString(s), true
		}
		if ok {
			return appendVarintField(b, fAnnotStringValueIID, iid)
		}
	}
	if last.score > 0 && string(s) == last.s {
		last.score = min(last.score+lastHit, lastMax)
		return appendVarintField(b, fAnnotStringValueIID, last.iid)
	}
	if len(s) > maxInternLen {
		if !utf8.Valid(s) {
			w.internBuf = appendValidUTF8(w.internBuf[:0], s)
			s = w.internBuf
		}
		return appendBytesField(b, fAnnotString, s)
	}
	// Only valid UTF-8 is interned, so a value found is valid.
	iid, ok := w.strIIDs[string(s)]
	if !ok && !utf8.Valid(s) {
		w.internBuf = appendValidUTF8(w.internBuf[:0], s)
		s = w.internBuf
		iid, ok = w.strIIDs[string(s)]
	}
	if !ok {
		if len(w.strIIDs) >= maxInterned {
			return appendBytesField(b, fAnnotString, s)
		}
		iid = w.internString(s)
	}
	if iid == last.iid {
		last.score = min(last.score+lastHit, lastMax) // not compared, but repeated
	} else {
		last.score = max(last.score-1, 0)
		last.s, last.iid = w.strs[iid-1], iid
	}
	return appendVarintField(b, fAnnotStringValueIID, iid)
}

// internString interns s, valid UTF-8 and not interned yet, adding it to
// the packet's InternedData, and returns its interning id.
func (w *Writer) internString(s []byte) uint64 {
	iid := uint64(len(w.strIIDs) + 1)
	k := string(s)
	w.strIIDs[k] = iid
	w.strs = append(w.strs, k)
	if len(s) <= maxShort {
		a, b := shortKey(s)
		w.short.add(a, b, len(s), iid)
	}
	var at int
	w.in, at = beginMessage(w.in, fInternedAnnotStrings)
	w.in = appendVarintField(w.in, fInternedIID, iid)
	w.in = appendBytesField(w.in, fInternedName, s)
	w.in = endMessage(w.in, at)
	return iid
}

// WriteEvent writes ev, an event or a notice. Events must come in
// timestamp order (as ctf.Reader returns them). The first write error is
// returned by this and every later call.
func (w *Writer) WriteEvent(ev *ctf.Event) error {
	if w.err != nil {
		return w.err
	}
	if ev.Class == nil {
		w.writeNotice(ev)
		return w.err
	}
	c := &noClass // the cached description of the class, or a new one
	if id := int(ev.Class.ID); id < len(w.classes) {
		c = w.classes[id]
	}
	if c.ec != ev.Class {
		c = w.newClass(ev.Class)
	}
	end := max(ev.Time, 0)
	paired, ok := w.spans.PairIn(c.span, ev)
	if d := c.duration; !ok && d >= 0 && d < len(ev.Fields) && ev.Fields[d].Kind == ctf.Int && ev.Fields[d].Int >= 0 {
		paired, ok = end-ev.Fields[d].Int, true
	}
	if ok {
		start := min(max(paired, 0), end)
		uuid := w.laneFor(c.provider, start, end)
		b, at, te := w.beginEvent(start, typeSliceBegin, uuid)
		b = w.appendEventBody(b, c, ev)
		w.endEvent(b, at, te)
		w.endSlice(end, uuid)
	} else {
		b, at, te := w.beginEvent(end, typeInstant, c.provider.uuids[0])
		b = w.appendEventBody(b, c, ev)
		w.endEvent(b, at, te)
	}
	for _, k := range c.counters {
		if k.field >= len(ev.Fields) {
			continue
		}
		b, at, te := w.beginEvent(end, typeCounter, k.uuid)
		switch v := ev.Fields[k.field]; v.Kind {
		case ctf.Int:
			b = appendVarintField(b, fEventCounterValue, uint64(v.Int))
		case ctf.Uint:
			if v.Uint <= math.MaxInt64 {
				b = appendVarintField(b, fEventCounterValue, v.Uint)
			} else {
				b = appendDoubleField(b, fEventDoubleCounterValue, float64(v.Uint))
			}
		case ctf.Float:
			b = appendDoubleField(b, fEventDoubleCounterValue, v.Float)
		}
		w.endEvent(b, at, te)
	}
	return w.err
}

// beginEvent appends to the output the start of a TracePacket at time ts
// and of its TrackEvent of type typ on track uuid. It returns the output
// and the offsets of both messages for endEvent.
func (w *Writer) beginEvent(ts int64, typ, uuid uint64) (b []byte, at, te int) {
	b = append(w.out, fTracePacket<<3|2, 0, fPacketTimestamp<<3)
	at = len(b) - 2
	// The delta from the previous packet: an earlier time (a slice's
	// begin, a loss's interval) is a negative one, in two's complement.
	b = appendVarint(b, uint64(ts-w.clock))
	w.clock = ts
	// trusted_packet_sequence_id, sequence_flags
	// SEQ_NEEDS_INCREMENTAL_STATE, and the track_event field with its
	// length byte, type and track.
	if w.seq < 0x80 {
		b = append(b, fPacketSequenceID<<3, byte(w.seq), fPacketSequenceFlags<<3, seqNeedsIncrementalState,
			fPacketTrackEvent<<3|2, 0, fEventType<<3, byte(typ), fEventTrackUUID<<3)
	} else {
		b = append(b, fPacketSequenceID<<3)
		b = appendVarint(b, w.seq)
		b = append(b, fPacketSequenceFlags<<3, seqNeedsIncrementalState,
			fPacketTrackEvent<<3|2, 0, fEventType<<3, byte(typ), fEventTrackUUID<<3)
	}
	te = len(b) - 4
	return appendVarint(b, uuid), at, te
}

// endEvent completes the packet begun by beginEvent, adding the names and
// strings interned while writing it.
func (w *Writer) endEvent(b []byte, at, te int) {
	b = endMessage(b, te)
	if len(w.in) > 0 {
		b = protoTagBytes(b, fPacketInternedData, len(w.in))
		b = append(b, w.in...)
		w.in = w.in[:0]
	}
	w.out = endMessage(b, at)
	w.maybeFlush()
}

// endSlice writes the end of the slice on track uuid at time ts.
func (w *Writer) endSlice(ts int64, uuid uint64) {
	b, at, te := w.beginEvent(ts, typeSliceEnd, uuid)
	w.endEvent(b, at, te)
}

// appendEventBody appends the category, name and fields (as debug
// annotations) of ev.
func (w *Writer) appendEventBody(b []byte, c *class, ev *ctf.Event) []byte {
	b = append(b, c.head...)
	fields := ev.Fields[:min(len(ev.Fields), len(c.fieldIIDs))]
	for i := range fields {
		v := &fields[i] // a pointer: a Value is 56 bytes
		var at int
		b, at = beginMessage(b, fEventDebugAnnotation)
		b = appendVarintField(b, fAnnotNameIID, c.fieldIIDs[i])
		switch v.Kind {
		case ctf.String:
			b = w.appendString(b, &c.last[i], v.Bytes)
		case ctf.Int:
			b = appendVarintField(b, fAnnotInt, uint64(v.Int))
		default:
			b = w.appendValue(b, v)
		}
		b = endMessage(b, at)
	}
	if ev.Truncated != 0 {
		var at int
		b, at = beginMessage(b, fEventDebugAnnotation)
		b = appendVarintField(b, fAnnotNameIID, w.intern(w.annotIIDs, fInternedAnnotNames, TruncatedArg))
		b = protowire.AppendTag(b, fAnnotString, protowire.BytesType)
		n := len(b)
		b = append(b, 0)
		for i, f := range ev.Class.Fields {
			if i < 8 && ev.Truncated&(1<<i) != 0 {
				if len(b) > n+1 {
					b = append(b, ',')
				}
				b = append(b, f.Name...)
			}
		}
		b = endMessage(b, n)
		b = endMessage(b, at)
	}
	return b
}

// TruncatedArg is the name of the debug annotation that lists, separated
// by commas, the fields of an event that the recorder truncated. Field
// names cannot begin with '_', so it cannot collide.
const TruncatedArg = "_truncated"

// appendValue appends the value of a debug annotation: integers as
// int_value and uint_value, floats as double_value, strings (made valid
// UTF-8) as string_value or an interned string_value_iid, bytes as a
// string of lower-case hexadecimal.
func (w *Writer) appendValue(b []byte, v *ctf.Value) []byte {
	switch v.Kind {
	case ctf.Int:
		return appendVarintField(b, fAnnotInt, uint64(v.Int))
	case ctf.Uint:
		return appendVarintField(b, fAnnotUint, v.Uint)
	case ctf.Float:
		return appendDoubleField(b, fAnnotDouble, v.Float)
	case ctf.String:
		var last lastString
		return w.appendString(b, &last, v.Bytes)
	case ctf.Bytes:
		b = protoTagBytes(b, fAnnotString, 2*len(v.Bytes))
		return encode.AppendHex(b, v.Bytes)
	}
	return appendBytesField(b, fAnnotString, "")
}

// writeNotice writes a notice of lost data as a slice on its stream's
// track, over the interval in which the data was lost.
func (w *Writer) writeNotice(ev *ctf.Event) {
	t := w.stream(ev)
	start := max(ev.Time, 0)
	end := max(ev.EndTime, start)
	uuid := w.laneFor(t, start, end)
	name := w.internBuf[:0]
	name = append(name, "lost "...)
	if ev.Discarded > 0 {
		name = appendCount(name, ev.Discarded, "event")
		if ev.LostPackets > 0 {
			name = append(name, " and "...)
		}
	}
	if ev.LostPackets > 0 {
		name = appendCount(name, ev.LostPackets, "packet")
	}
	w.internBuf = name
	catIID := w.intern(w.catIIDs, fInternedCategories, NoticeTrack)
	nameIID := w.intern(w.nameIIDs, fInternedEventNames, string(name))
	b, at, te := w.beginEvent(start, typeSliceBegin, uuid)
	b = appendVarintField(b, fEventCategoryIIDs, catIID)
	b = appendVarintField(b, fEventNameIID, nameIID)
	for _, a := range [...]struct {
		name string
		v    uint64
	}{{"stream", uint64(ev.Stream)}, {"cpu", uint64(ev.CPU)}, {"lost_events", ev.Discarded}, {"lost_packets", ev.LostPackets}} {
		iid := w.intern(w.annotIIDs, fInternedAnnotNames, a.name)
		var d int
		b, d = beginMessage(b, fEventDebugAnnotation)
		b = appendVarintField(b, fAnnotNameIID, iid)
		b = appendVarintField(b, fAnnotUint, a.v)
		b = endMessage(b, d)
	}
	w.endEvent(b, at, te)
	w.endSlice(end, uuid)
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

// flushSize is the amount of output buffered before it is written.
const flushSize = 64 << 10

// maybeFlush writes the output once flushSize bytes are buffered.
func (w *Writer) maybeFlush() {
	if len(w.out) >= flushSize {
		w.flush()
	}
}

func (w *Writer) flush() {
	if w.err == nil && len(w.out) > 0 {
		_, w.err = w.w.Write(w.out)
	}
	w.out = w.out[:0]
}

// Close writes the buffered output. It does not close the underlying
// io.Writer. Closing again does nothing.
func (w *Writer) Close() error {
	if w.err == ErrClosed {
		return nil
	}
	w.flush()
	if w.err != nil {
		return w.err
	}
	w.err = ErrClosed
	return nil
}

// ErrClosed is returned by WriteEvent after Close: the trace is complete.
var ErrClosed = errors.New("perfetto: write after Close")

// protoTagBytes appends the tag and length of a length-delimited field of
// n bytes.
func protoTagBytes(b []byte, num protowire.Number, n int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

// validUTF8 returns s with invalid UTF-8 replaced by U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// appendValidUTF8 appends s with each invalid byte replaced by U+FFFD.
func appendValidUTF8(dst, s []byte) []byte {
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, s[:size]...)
		}
		s = s[size:]
	}
	return dst
}
