package ctf

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
)

// Event is one item read from a trace: an event record or, when Class is
// nil, a notice that the recorder discarded events or lost packets in a
// stream.
type Event struct {
	// Class is the event class, or nil for a discarded-events notice.
	Class *EventClass
	// Stream is the data stream number (the N of file channel0_N).
	Stream uint32
	// CPU is the cpu_id of the packet holding the event.
	CPU uint32
	// Cycles is the timestamp in clock cycles and Time the same instant in
	// nanoseconds since the clock origin (OffsetSeconds and Offset applied),
	// computed like Babeltrace 2 does so that both agree to the nanosecond.
	// For a notice, they are the beginning of the time range in which
	// events were discarded: the end of the previous packet of the stream
	// (or the beginning of the first packet).
	Cycles uint64
	Time   int64
	// Fields holds one value per field of Class, in order. Byte slices
	// alias the reader's buffers: they are valid until the next call to
	// Next.
	Fields []Value
	// Context holds one value per field of the trace's EventContext
	// (Reader.Info), in order, and ContextFields those fields; both empty
	// if the trace has none. Like Fields, its byte slices alias the
	// reader's buffers.
	Context       []Value
	ContextFields []Field
	// Truncated is the value of the truncation trailer (bit i set: field i
	// was truncated by the recorder), or 0 if the class has none.
	Truncated uint8
	// Discarded is, for a notice, the number of events discarded: the
	// growth of the stream's events_discarded counter. The first packet's
	// counter counts from 0 (Babeltrace reports it as "may have discarded
	// events", without a count).
	Discarded uint64
	// LostPackets is, for a notice, the number of packets missing before
	// the packet: the gap in packet_seq_num.
	LostPackets uint64
	// EndCycles and EndTime are, for a notice, the end of the time range:
	// the end of the packet whose counter grew.
	EndCycles uint64
	EndTime   int64
	// Offset is the byte offset in the stream file of the event record, or
	// for a notice of the packet whose counter grew.
	Offset int64
}

// Name returns the event class name, or "" for a notice.
func (e *Event) Name() string {
	if e.Class == nil {
		return ""
	}
	return e.Class.Name
}

// CorruptError reports data stream content that does not follow the
// format. It matches ErrCorrupt with errors.Is.
type CorruptError struct {
	File   string // path of the data stream file
	Offset int64  // byte offset of the problem in the file
	Reason string
}

// Error returns "reading FILE at offset N: corrupt data stream: REASON".
func (e *CorruptError) Error() string {
	return fmt.Sprintf("reading %s at offset %d: %v: %s", e.File, e.Offset, ErrCorrupt, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Reader reads a trace written by Writer. It merges the events of all data
// streams in timestamp order. A Reader is not safe for concurrent use.
type Reader struct {
	dir     string
	md      *parsedMetadata
	tab     *classTable
	conv    clockConv
	streams []*streamReader
	heap    []*streamReader // the streams not done; the top returned last
	started bool
	err     error
}

// streamReader reads the packets of one data stream file.
type streamReader struct {
	id     uint32
	path   string
	ra     io.ReaderAt
	closer io.Closer
	size   int64

	next    int64 // offset of the next packet
	pktOff  int64 // offset of the current packet
	pkt     PacketInfo
	buf     []byte // current packet's records, in rbuf
	rbuf    []byte // the file from offset rbufOff, read ahead
	rbufOff int64
	pktSize int64 // size of the last packet read
	pos     int   // next record in buf
	started bool  // a packet was loaded
	lastTS  uint64
	notice  bool   // a notice is pending:
	discard uint64 // its discarded events,
	lost    uint64 // its lost packets
	noticeB uint64 // and its range beginning
	hdr     [PacketPreambleSize]byte
	head    Event
	done    bool
}

// Open opens the trace in directory dir: it parses the metadata file and
// finds the data stream files (channel0_<N>; empty files are ignored, like
// Babeltrace does). Only the metadata written by Writer is supported.
func Open(dir string) (*Reader, error) {
	mpath := filepath.Join(dir, metadataName)
	text, err := os.ReadFile(mpath)
	if err != nil {
		return nil, fmt.Errorf("opening trace %s: %w", dir, err)
	}
	md, err := parseMetadata(string(text))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w: %v", mpath, ErrMetadata, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("opening trace %s: %w", dir, err)
	}
	r := newReader(dir, md)
	for _, e := range entries {
		name := e.Name()
		if name == metadataName || name[0] == '.' || e.IsDir() {
			continue
		}
		id, ok := streamNumber(name)
		if !ok {
			r.Close()
			return nil, fmt.Errorf("opening trace %s: unexpected file %s (data stream files are named %s<N>)", dir, name, streamFilePrefix)
		}
		path := filepath.Join(dir, name)
		f, err := os.Open(path)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("opening trace %s: %w", dir, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			r.Close()
			return nil, fmt.Errorf("opening trace %s: %w", dir, err)
		}
		if st.Size() == 0 {
			f.Close()
			continue
		}
		r.addStream(id, path, f, f, st.Size())
	}
	return r, nil
}

func newReader(dir string, md *parsedMetadata) *Reader {
	return &Reader{
		dir:  dir,
		md:   md,
		tab:  (*classTable)(nil).with(md.classes).withContext(md.info.EventContext),
		conv: newClockConv(&md.info.Clock),
	}
}

func (r *Reader) addStream(id uint32, path string, ra io.ReaderAt, c io.Closer, size int64) {
	r.streams = append(r.streams, &streamReader{id: id, path: path, ra: ra, closer: c, size: size})
	slices.SortFunc(r.streams, func(a, b *streamReader) int { return cmp.Compare(a.id, b.id) })
}

// Warnings returns the problems Open worked around rather than refusing
// the trace: tracemark's notes in the metadata (comments that carry span
// declarations and truncated twins, which Babeltrace skips) that could
// not be read. Without a note, a class has no span declaration, and a
// truncated twin reads as a class of its own of the same name, as
// Babeltrace reads it. Each warning names its metadata line.
func (r *Reader) Warnings() []string { return slices.Clone(r.md.warnings) }

// Info returns the trace description from the metadata.
func (r *Reader) Info() TraceInfo {
	info := r.md.info
	info.Env = cloneEnv(info.Env)
	return info
}

// Classes returns the event classes of the trace, ordered by ID.
func (r *Reader) Classes() []EventClass {
	out := make([]EventClass, len(r.md.classes))
	for i, ec := range r.md.classes {
		out[i] = *ec.clone()
	}
	return out
}

// Streams returns the numbers of the non-empty data streams, in order.
func (r *Reader) Streams() []uint32 {
	ids := make([]uint32, len(r.streams))
	for i, s := range r.streams {
		ids[i] = s.id
	}
	return ids
}

// Next returns the next event of the trace in timestamp order (events of
// equal timestamps in stream number order), or io.EOF after the last one.
// The returned Event, including its Fields, is only valid until the next
// call to Next. After an error, Next keeps returning it.
func (r *Reader) Next() (*Event, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.started {
		r.started = true
		for _, s := range r.streams {
			if err := r.advance(s); err != nil {
				return nil, err
			}
			if !s.done {
				r.push(s)
			}
		}
	} else if len(r.heap) > 0 {
		// The stream of the event returned last is at the top of the
		// heap: advance it and sift it down, one walk instead of a pop
		// and a push.
		s := r.heap[0]
		if err := r.advance(s); err != nil {
			return nil, err
		}
		if s.done {
			r.pop()
		} else {
			r.down(0)
		}
	}
	if len(r.heap) == 0 {
		return nil, io.EOF
	}
	return &r.heap[0].head, nil
}

// Events returns an iterator over the remaining events; see Next. The
// iteration stops after the first error.
func (r *Reader) Events() iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		for {
			ev, err := r.Next()
			if err == io.EOF {
				return
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// Close closes the data stream files.
func (r *Reader) Close() error {
	var errs []error
	for _, s := range r.streams {
		if s.closer != nil {
			errs = append(errs, s.closer.Close())
			s.closer = nil
		}
	}
	if r.err == nil {
		r.err = errors.New("ctf: reader closed")
	}
	return errors.Join(errs...)
}

func less(a, b *streamReader) bool {
	if a.head.Cycles != b.head.Cycles {
		return a.head.Cycles < b.head.Cycles
	}
	return a.id < b.id
}

func (r *Reader) push(s *streamReader) {
	h := append(r.heap, s)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !less(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	r.heap = h
}

// pop removes the top of the heap.
func (r *Reader) pop() {
	n := len(r.heap) - 1
	r.heap[0] = r.heap[n]
	r.heap[n] = nil
	r.heap = r.heap[:n]
	r.down(0)
}

// down moves the stream at heap index i down to its place.
func (r *Reader) down(i int) {
	h := r.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if l+1 < n && less(h[l+1], h[l]) {
			m = l + 1
		}
		if !less(h[m], h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (r *Reader) corrupt(s *streamReader, off int64, format string, args ...any) error {
	r.err = &CorruptError{File: s.path, Offset: off, Reason: fmt.Sprintf(format, args...)}
	return r.err
}

// advance sets s.head to the next item of stream s, or s.done.
func (r *Reader) advance(s *streamReader) error {
	for {
		if s.notice {
			ev := &s.head
			*ev = Event{Stream: s.id, CPU: s.pkt.CPU, Cycles: s.noticeB, Discarded: s.discard, LostPackets: s.lost,
				EndCycles: s.pkt.EndTS, Offset: s.pktOff, Fields: ev.Fields[:0]}
			s.notice = false
			var ok1, ok2 bool
			ev.Time, ok1 = r.conv.toNS(ev.Cycles)
			ev.EndTime, ok2 = r.conv.toNS(ev.EndCycles)
			if !ok1 || !ok2 {
				return r.corrupt(s, s.pktOff+offTSBegin, "packet timestamps out of the range of nanoseconds since the clock origin")
			}
			s.lastTS = ev.Cycles
			return nil
		}
		if s.pos < len(s.buf) {
			ev := &s.head
			next, derr := decodeRecord(s.buf, s.pos, r.tab, ev, true)
			off := s.pktOff + PacketPreambleSize + int64(s.pos)
			if derr != nil {
				return r.corrupt(s, s.pktOff+PacketPreambleSize+int64(derr.off), "%s", derr.msg)
			}
			if ev.Cycles < s.lastTS {
				return r.corrupt(s, off+2, "event timestamp %d is before the previous one (%d)", ev.Cycles, s.lastTS)
			}
			if ev.Cycles < s.pkt.BeginTS || ev.Cycles > s.pkt.EndTS {
				return r.corrupt(s, off+2, "event timestamp %d outside its packet's range [%d, %d]", ev.Cycles, s.pkt.BeginTS, s.pkt.EndTS)
			}
			var ok bool
			if ev.Time, ok = r.conv.toNS(ev.Cycles); !ok {
				return r.corrupt(s, off+2, "event timestamp %d out of the range of nanoseconds since the clock origin", ev.Cycles)
			}
			ev.Stream, ev.CPU, ev.Offset = s.id, s.pkt.CPU, off
			ev.Discarded, ev.LostPackets, ev.EndCycles, ev.EndTime = 0, 0, 0, 0
			s.lastTS = ev.Cycles
			s.pos = next
			return nil
		}
		if s.next >= s.size {
			s.done = true
			return nil
		}
		if err := r.loadPacket(s); err != nil {
			return err
		}
	}
}

// readAhead is the least a reader reads of a stream file at once: small
// packets (a few KiB) come many to a read, the header of a packet with its
// records, instead of two reads a packet.
const readAhead = 128 << 10

// window returns the n bytes of stream s at offset off, which its
// read-ahead buffer holds or which it reads, with what follows them: the
// larger of readAhead and the last packet's size, as far as the file
// goes. The bytes are valid until the next call.
func (r *Reader) window(s *streamReader, off int64, n int) ([]byte, error) {
	end := s.rbufOff + int64(len(s.rbuf))
	if off >= s.rbufOff && off+int64(n) <= end {
		i := int(off - s.rbufOff)
		return s.rbuf[i : i+n : i+n], nil
	}
	keep := 0 // the bytes from off already read
	if off >= s.rbufOff && off < end {
		keep = copy(s.rbuf, s.rbuf[off-s.rbufOff:])
	}
	size := max(n, int(min(max(readAhead, s.pktSize), s.size-off)))
	if cap(s.rbuf) < size {
		b := make([]byte, size)
		copy(b, s.rbuf[:keep])
		s.rbuf = b
	}
	s.rbuf = s.rbuf[:size]
	got, err := s.ra.ReadAt(s.rbuf[keep:], off+int64(keep))
	s.rbuf, s.rbufOff = s.rbuf[:keep+got], off
	switch {
	case keep+got >= n:
		return s.rbuf[:n:n], nil // err may be io.EOF at the end of the file
	case err == io.EOF || err == nil:
		return nil, r.corrupt(s, off+int64(keep+got), "file ended early: %d bytes read of %d", keep+got, n)
	}
	r.err = fmt.Errorf("reading %s at offset %d: %w", s.path, off, err)
	return nil, r.err
}

// loadPacket reads and checks the packet at s.next.
func (r *Reader) loadPacket(s *streamReader) error {
	off := s.next
	left := s.size - off
	if left < PacketPreambleSize {
		return r.corrupt(s, off, "truncated packet header: %d bytes left in the file, need %d", left, PacketPreambleSize)
	}
	w, err := r.window(s, off, PacketPreambleSize)
	if err != nil {
		return err
	}
	h := s.hdr[:]
	copy(h, w)
	le := binary.LittleEndian
	if m := le.Uint32(h); m != PacketMagic {
		return r.corrupt(s, off, "bad packet magic 0x%08x, want 0x%08x", m, uint32(PacketMagic))
	}
	if [16]byte(h[4:20]) != r.md.info.UUID {
		return r.corrupt(s, off+4, "packet UUID %s differs from the trace UUID %s", uuidString([16]byte(h[4:20])), uuidString(r.md.info.UUID))
	}
	if id := le.Uint32(h[20:]); id != streamClassID {
		return r.corrupt(s, off+20, "stream_id %d, want %d", id, streamClassID)
	}
	p := PacketInfo{
		BeginTS:   le.Uint64(h[offTSBegin:]),
		EndTS:     le.Uint64(h[offTSEnd:]),
		Seq:       le.Uint64(h[offSeq:]),
		Discarded: le.Uint64(h[offDiscard:]),
		CPU:       le.Uint32(h[offCPU:]),
	}
	contentBits, packetBits := le.Uint64(h[offContent:]), le.Uint64(h[offPktSize:])
	switch {
	case contentBits%8 != 0 || packetBits%8 != 0:
		return r.corrupt(s, off+offContent, "content_size %d or packet_size %d bits is not a whole number of bytes", contentBits, packetBits)
	case contentBits < PacketPreambleSize*8:
		return r.corrupt(s, off+offContent, "content_size %d bits is smaller than the packet header and context", contentBits)
	case contentBits > packetBits:
		return r.corrupt(s, off+offContent, "content_size %d bits exceeds packet_size %d bits", contentBits, packetBits)
	case packetBits/8 > uint64(left):
		return r.corrupt(s, off+offPktSize, "packet_size %d bytes exceeds the %d bytes left in the file", packetBits/8, left)
	case p.BeginTS > p.EndTS:
		return r.corrupt(s, off+offTSBegin, "timestamp_begin %d > timestamp_end %d", p.BeginTS, p.EndTS)
	}
	var prevDisc, lost uint64
	noticeB := p.BeginTS
	if s.started {
		switch {
		case p.Seq <= s.pkt.Seq:
			return r.corrupt(s, off+offSeq, "packet_seq_num %d does not follow %d", p.Seq, s.pkt.Seq)
		case p.BeginTS < s.pkt.EndTS:
			return r.corrupt(s, off+offTSBegin, "timestamp_begin %d is before the previous packet's timestamp_end %d", p.BeginTS, s.pkt.EndTS)
		case p.Discarded < s.pkt.Discarded:
			return r.corrupt(s, off+offDiscard, "events_discarded %d decreased from %d", p.Discarded, s.pkt.Discarded)
		}
		prevDisc = s.pkt.Discarded
		lost = p.Seq - s.pkt.Seq - 1
		noticeB = s.pkt.EndTS
	}
	n := int(contentBits/8) - PacketPreambleSize
	s.pktSize = int64(packetBits / 8)
	if s.buf, err = r.window(s, off+PacketPreambleSize, n); err != nil {
		return err
	}
	s.pkt = p
	s.pktOff = off
	s.next = off + int64(packetBits/8)
	s.pos = 0
	s.started = true
	s.discard, s.lost, s.noticeB = p.Discarded-prevDisc, lost, noticeB
	s.notice = s.discard > 0 || s.lost > 0
	return nil
}
