package ctf

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// pageSize is the unit in which the kernel copies write(2) data into the
// page cache; a fatal signal can only cut a write at a multiple of it (see
// the package documentation).
const pageSize = 4096

// Tail growth bounds: the tail packet grows by a quarter of the file size,
// within these bounds (or by what a larger packet needs), so that growth
// costs amortize. Pages are appended maxGrowth bytes at a time at most.
// maxGrowth is small enough that the empty pages appended are still in
// the CPU's cache when the packets written next overwrite them: growing
// 4 MiB ahead made writing a trace cost two to three times the CPU of
// writing it once.
const (
	minGrowth = 64 << 10
	maxGrowth = 256 << 10
)

// MaxSeq is the largest packet sequence number: the writer numbers the
// empty packets that follow a packet with the next numbers.
const MaxSeq = 1<<63 - 1

// Writer writes a CTF trace directory. It is safe for concurrent use:
// AddEventClass may run while other goroutines write packets, and packets
// of different streams can be written concurrently.
type Writer struct {
	dir  string
	info TraceInfo

	classes atomic.Pointer[classTable]

	metaMu   sync.Mutex // serializes metadata changes
	meta     []byte     // complete metadata text as on disk
	metaFile *os.File   // open on the metadata file, for appends and Sync

	mu      sync.Mutex // guards streams and closed
	streams map[uint32]*streamWriter
	closed  bool
}

// streamWriter is the state of one data stream file. Its content is always
// a sequence of complete packets followed by one empty "tail" packet that
// covers the rest of the file (see the package documentation).
type streamWriter struct {
	mu     sync.Mutex
	path   string
	f      *os.File
	err    error // sticky: the file is in an unknown state
	closed bool

	tail int64 // offset of the tail packet
	size int64 // file size: the tail packet ends here
	// tailInfo is the packet context of the tail packet (empty, size
	// size-tail); its Seq is the next packet's minimum sequence number.
	tailInfo PacketInfo

	started  bool       // a packet has been written
	last     PacketInfo // context of the last written packet
	scratch  []byte
	growBuf  []byte
	preamble [PacketPreambleSize]byte

	// The file is written back as it grows (pace): up to writeback it
	// has been asked to, up to dropped its pages left the page cache;
	// startWB and dropWB do it (startWriteback and dropWritten, but in
	// tests).
	writeback, dropped int64
	startWB, dropWB    func(f *os.File, off, n int64)
}

// Create creates a trace in directory dir (created if needed; it must not
// already contain a trace) and writes the metadata preamble: trace,
// environment, clock and stream descriptions. Event classes are added with
// AddEventClass. Zero UUIDs in info are replaced by random ones; the values
// used are returned by Info.
func Create(dir string, info TraceInfo) (*Writer, error) {
	info.Env = cloneEnv(info.Env)
	info.EventContext = slices.Clone(info.EventContext)
	if _, ok := info.Env["tracer_name"]; !ok {
		info.Env["tracer_name"] = "tracemark"
	}
	if info.UUID == ([16]byte{}) {
		info.UUID = newUUID()
	}
	if info.Clock.UUID == ([16]byte{}) {
		info.Clock.UUID = newUUID()
	}
	if err := validateInfo(&info); err != nil {
		return nil, fmt.Errorf("creating trace %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating trace %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("creating trace %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.Name() == metadataName || isStreamFileName(e.Name()) {
			return nil, fmt.Errorf("creating trace %s: %w: directory already holds a trace file %s", dir, fs.ErrExist, e.Name())
		}
	}
	w := &Writer{dir: dir, info: info, streams: make(map[uint32]*streamWriter)}
	w.classes.Store(&classTable{ctx: info.EventContext})
	if err := w.replaceMetadata(metadataPreamble(&info)); err != nil {
		return nil, fmt.Errorf("creating trace %s: %w", dir, err)
	}
	return w, nil
}

func cloneEnv(m map[string]string) map[string]string {
	c := make(map[string]string, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

func newUUID() [16]byte {
	var u [16]byte
	_, _ = rand.Read(u[:])  // never fails on supported platforms
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

func isStreamFileName(name string) bool {
	_, ok := streamNumber(name)
	return ok
}

// streamNumber returns the stream number of a data stream file name.
func streamNumber(name string) (uint32, bool) {
	rest, ok := strings.CutPrefix(name, streamFilePrefix)
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// Dir returns the trace directory.
func (w *Writer) Dir() string { return w.dir }

// Info returns the trace description, with the UUIDs and environment
// actually written.
func (w *Writer) Info() TraceInfo {
	info := w.info
	info.Env = cloneEnv(w.info.Env)
	return info
}

// replaceMetadata atomically replaces the metadata file with text: it is
// written to a hidden temporary file (ignored by trace readers) that is
// then renamed over the metadata file.
func (w *Writer) replaceMetadata(text []byte) error {
	path := filepath.Join(w.dir, metadataName)
	tmp := filepath.Join(w.dir, ".metadata.tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(text); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	nf, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if w.metaFile != nil {
		w.metaFile.Close()
	}
	w.metaFile = nf
	w.meta = text
	return nil
}

// appendMetadata makes the metadata file end with block, atomically with
// respect to the process being killed: a write(2) that stays within one
// page cannot be cut by a signal, so such blocks are appended in place;
// others are written by replacing the whole file.
func (w *Writer) appendMetadata(block []byte) error {
	n := len(w.meta)
	if n%pageSize+len(block) <= pageSize {
		m, err := w.metaFile.Write(block)
		if err == nil {
			w.meta = append(w.meta, block...)
			return nil
		}
		if m > 0 {
			// Cut the partial block (disk full...) so that the file stays
			// syntactically complete.
			if terr := w.metaFile.Truncate(int64(n)); terr != nil {
				return errors.Join(err, terr)
			}
		}
		return err
	}
	return w.replaceMetadata(append(slices.Clip(w.meta), block...))
}

// AddEventClass adds an event class to the trace: its event block is
// appended to the metadata file before AddEventClass returns, and packets
// may use the class from then on. It may be called at any time before
// Close, also while other goroutines write packets. Adding a class
// identical to an already added one does nothing; adding a different class
// with the same ID is an error.
func (w *Writer) AddEventClass(ec EventClass) error {
	return w.AddEventClasses([]EventClass{ec})
}

// AddEventClasses adds several event classes with a single metadata update.
// See AddEventClass.
func (w *Writer) AddEventClasses(ecs []EventClass) error {
	w.metaMu.Lock()
	defer w.metaMu.Unlock()
	if w.isClosed() {
		return ErrClosed
	}
	tab := w.classes.Load()
	var added []*EventClass
	var block []byte
	for i := range ecs {
		ec := ecs[i].clone()
		if err := ec.Validate(); err != nil {
			return err
		}
		ids := []uint16{ec.ID}
		if ec.Twin() {
			ids = append(ids, ec.TruncatedID)
		}
		same := false
		for _, id := range ids {
			old := tab.get(id)
			for _, a := range added {
				if a.ID == id || a.Twin() && a.TruncatedID == id {
					old = a
				}
			}
			if old == nil {
				continue
			}
			if old.equal(ec) {
				same = true
				continue
			}
			return fmt.Errorf("%w: event class id %d (%q) is already used by %q with other fields", ErrInvalidClass, id, ec.Name, old.Name)
		}
		if same {
			continue
		}
		added = append(added, ec)
		block = append(block, eventBlock(ec)...)
	}
	if len(added) == 0 {
		return nil
	}
	if err := w.appendMetadata(block); err != nil {
		return fmt.Errorf("adding event classes to %s: %w", w.dir, err)
	}
	// Publish only now: a packet can use a class once its description is
	// in the metadata file.
	w.classes.Store(tab.with(added))
	return nil
}

// Classes returns the event classes added so far, ordered by ID.
func (w *Writer) Classes() []EventClass {
	var out []EventClass
	for id, ec := range w.classes.Load().byID {
		if ec != nil && int(ec.ID) == id {
			out = append(out, *ec.clone())
		}
	}
	return out
}

func (w *Writer) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// checkInfo validates a packet's context.
func (w *Writer) checkInfo(p *PacketInfo) error {
	if p.BeginTS > p.EndTS {
		return fmt.Errorf("%w: timestamp_begin %d > timestamp_end %d", ErrInvalidPacket, p.BeginTS, p.EndTS)
	}
	if p.Seq > MaxSeq {
		return fmt.Errorf("%w: packet_seq_num %d > %d", ErrInvalidPacket, p.Seq, uint64(MaxSeq))
	}
	conv := newClockConv(&w.info.Clock)
	if _, ok := conv.toNS(p.EndTS); !ok {
		return fmt.Errorf("%w: timestamp_end %d cycles is out of the range of nanoseconds since the clock origin", ErrInvalidPacket, p.EndTS)
	}
	return nil
}

// checkPacket validates the packet info and walks the records: every record
// must be of an added class, complete, and have a timestamp within
// [BeginTS, EndTS] not smaller than the previous record's.
func (w *Writer) checkPacket(p *PacketInfo, records []byte) error {
	if err := w.checkInfo(p); err != nil {
		return err
	}
	tab := w.classes.Load()
	var ev Event
	last := p.BeginTS
	for pos := 0; pos < len(records); {
		next, derr := decodeRecord(records, pos, tab, &ev, false)
		if derr != nil {
			return fmt.Errorf("%w: record at offset %d: %s", ErrInvalidPacket, derr.off, derr.msg)
		}
		if ev.Cycles < last || ev.Cycles > p.EndTS {
			return fmt.Errorf("%w: record at offset %d: timestamp %d outside [%d (previous), %d (timestamp_end)]",
				ErrInvalidPacket, pos, ev.Cycles, last, p.EndTS)
		}
		last = ev.Cycles
		pos = next
	}
	return nil
}

// WritePacket writes one packet to data stream stream (file
// channel0_<stream>): the packet header and context built from p, then
// records, a sequence of complete event records of added classes.
//
// Packets of a stream must come in order: Seq increasing, BeginTS not
// before the previous packet's EndTS, Discarded not decreasing. The
// records are validated; an invalid packet is not written.
//
// When WritePacket returns, the packet is part of the file for any reader,
// even if the process is killed right after; if the process is killed
// during WritePacket, readers see none of the packet (at most some more
// empty packets).
func (w *Writer) WritePacket(stream uint32, p PacketInfo, records []byte) error {
	if err := w.checkPacket(&p, records); err != nil {
		return fmt.Errorf("writing packet %d of stream %d: %w", p.Seq, stream, err)
	}
	s, err := w.stream(stream)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(&w.info.UUID, &p, records); err != nil {
		return fmt.Errorf("writing packet %d to %s: %w", p.Seq, s.path, err)
	}
	return nil
}

// WriteTrustedPacket is WritePacket for records from an encoder the caller
// trusts to produce complete records of added classes in timestamp order
// within [BeginTS, EndTS], such as a tracemark session's buffers. It checks
// the packet context, the stream order and the first record's header, but
// does not walk the records, which is most of WritePacket's cost at high
// event rates. Records that break the promise make a trace that readers
// reject from that packet on; use WritePacket for records of any other
// origin.
func (w *Writer) WriteTrustedPacket(stream uint32, p PacketInfo, records []byte) error {
	err := w.checkInfo(&p)
	if err == nil && len(records) > 0 {
		err = w.checkFirst(&p, records)
	}
	if err != nil {
		return fmt.Errorf("writing packet %d of stream %d: %w", p.Seq, stream, err)
	}
	s, err := w.stream(stream)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(&w.info.UUID, &p, records); err != nil {
		return fmt.Errorf("writing packet %d to %s: %w", p.Seq, s.path, err)
	}
	return nil
}

// checkFirst checks the header of a packet's first record: an added class
// and a timestamp within the packet's.
func (w *Writer) checkFirst(p *PacketInfo, records []byte) error {
	if len(records) < EventHeaderSize {
		return fmt.Errorf("%w: record at offset 0: truncated event header: %d bytes", ErrInvalidPacket, len(records))
	}
	if id := binary.LittleEndian.Uint16(records); w.classes.Load().get(id) == nil {
		return fmt.Errorf("%w: record at offset 0: unknown event class id %d", ErrInvalidPacket, id)
	}
	if ts := binary.LittleEndian.Uint64(records[2:]); ts < p.BeginTS || ts > p.EndTS {
		return fmt.Errorf("%w: record at offset 0: timestamp %d outside [%d, %d]", ErrInvalidPacket, ts, p.BeginTS, p.EndTS)
	}
	return nil
}

func (w *Writer) stream(id uint32) (*streamWriter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	if s := w.streams[id]; s != nil {
		return s, nil
	}
	path := filepath.Join(w.dir, streamFilePrefix+strconv.FormatUint(uint64(id), 10))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating data stream %d: %w", id, err)
	}
	s := &streamWriter{path: path, f: f, startWB: startWriteback, dropWB: dropWritten}
	w.streams[id] = s
	return s, nil
}

// write appends one packet; s.mu is held. The steps keep the file a valid
// sequence of packets after every single write(2), and every write that
// changes what readers see is within one page, so a kill cannot cut it:
//
//  1. if the tail packet is too small: append pages that are each a
//     complete empty packet, then enlarge the tail packet over them;
//  2. write the records, and the header of the next tail packet after
//     them, into the padding of the current tail packet (invisible);
//  3. overwrite the tail packet's header and context with the new
//     packet's: this publishes the packet.
func (s *streamWriter) write(uuid *[16]byte, p *PacketInfo, records []byte) error {
	if s.closed {
		return ErrClosed
	}
	if s.err != nil {
		return s.err
	}
	if s.started {
		switch {
		case p.Seq <= s.last.Seq:
			return fmt.Errorf("%w: packet_seq_num %d does not follow %d", ErrInvalidPacket, p.Seq, s.last.Seq)
		case p.BeginTS < s.last.EndTS:
			return fmt.Errorf("%w: timestamp_begin %d is before the previous packet's timestamp_end %d", ErrInvalidPacket, p.BeginTS, s.last.EndTS)
		case p.Discarded < s.last.Discarded:
			return fmt.Errorf("%w: events_discarded %d is smaller than the previous packet's %d (it is cumulative)", ErrInvalidPacket, p.Discarded, s.last.Discarded)
		}
	} else if s.size == 0 {
		// A new, empty file: readers ignore it. Make it a single empty
		// packet of one page (one write that cannot be cut).
		s.tailInfo = PacketInfo{BeginTS: p.BeginTS, EndTS: p.BeginTS, Seq: p.Seq, CPU: p.CPU}
		s.tail = 0
		if err := s.appendPadPages(uuid, 1); err != nil {
			return err
		}
	}
	// The packet's size: its content, padded (by less than a preamble) so
	// that the next tail header does not cross a page boundary.
	content := int64(PacketPreambleSize + len(records))
	size := content
	if r := (s.tail + size) % pageSize; r > pageSize-PacketPreambleSize {
		size += pageSize - r
	}
	next := s.tail + size // offset of the new tail packet
	if next+PacketPreambleSize > s.size {
		if err := s.grow(uuid, next+PacketPreambleSize); err != nil {
			return err
		}
	}
	newTail := PacketInfo{BeginTS: p.EndTS, EndTS: p.EndTS, Seq: p.Seq + 1, Discarded: p.Discarded, CPU: p.CPU}

	// Step 2: records, padding and the next tail header, all inside the
	// current tail packet's padding.
	if _, err := s.f.WriteAt(records, s.tail+PacketPreambleSize); err != nil {
		return err
	}
	pad := int(size - content)
	s.scratch = slices.Grow(s.scratch[:0], pad+PacketPreambleSize)[:pad+PacketPreambleSize]
	clear(s.scratch[:pad])
	putPreamble(s.scratch[pad:], uuid, &newTail, PacketPreambleSize, uint64(s.size-next))
	if _, err := s.f.WriteAt(s.scratch, s.tail+content); err != nil {
		return err
	}
	// Step 3: publish.
	putPreamble(s.preamble[:], uuid, p, uint64(content), uint64(size))
	if err := s.writeHeader(s.preamble[:], s.tail); err != nil {
		return err
	}
	s.tail = next
	s.tailInfo = newTail
	s.last = *p
	s.started = true
	s.pace()
	return nil
}

// writebackChunk is how many bytes of a stream file pace lets pile up
// before it starts writing them back.
const writebackChunk = 8 << 20

// pace keeps a stream file's pages from piling up in the page cache, as
// LTTng's consumer daemon does with sync_file_range and
// posix_fadvise(DONTNEED): every writebackChunk bytes written it starts
// writing them back, and drops the chunk it started on the time before,
// on disk by then (what is not stays cached). A trace written at hundreds
// of MB/s otherwise takes a new page-cache page for every 4 KiB, and on
// some virtual machines a page never used before costs far more than its
// copy: there, the pages dropped are the next ones taken. Bursts of
// writeback when the kernel's dirty limit is reached go too.
func (s *streamWriter) pace() {
	end := s.tail &^ (pageSize - 1) // pages before the tail packet's
	if end-s.writeback < writebackChunk {
		return
	}
	s.startWB(s.f, s.writeback, end-s.writeback)
	if s.writeback > s.dropped {
		s.dropWB(s.f, s.dropped, s.writeback-s.dropped)
		s.dropped = s.writeback
	}
	s.writeback = end
}

// writeHeader writes a packet preamble that must not be cut: it never
// crosses a page boundary.
func (s *streamWriter) writeHeader(b []byte, off int64) error {
	if off/pageSize != (off+int64(len(b))-1)/pageSize {
		return fmt.Errorf("internal error: packet header at offset %d crosses a page boundary", off)
	}
	if _, err := s.f.WriteAt(b, off); err != nil {
		// Unknown state: stop writing this stream.
		s.err = fmt.Errorf("stream left unusable by a failed header write: %w", err)
		return err
	}
	return nil
}

// grow makes the file at least need bytes long, keeping it valid after
// each write: it appends empty one-page packets, then extends the tail
// packet over them. If appending fails, the file is cut back to its former
// size (one atomic truncate), leaving no stray packets behind.
func (s *streamWriter) grow(uuid *[16]byte, need int64) error {
	add := min(max(s.size/4, minGrowth), maxGrowth)
	add = max(add, need-s.size)
	pages := (add + pageSize - 1) / pageSize
	if err := s.appendPadPages(uuid, pages); err != nil {
		return err
	}
	putPreamble(s.preamble[:], uuid, &s.tailInfo, PacketPreambleSize, uint64(s.size-s.tail))
	return s.writeHeader(s.preamble[:], s.tail)
}

// appendPadPages appends pages at s.size, each a complete empty packet
// following the tail packet (same context, next sequence numbers), and
// adds them to s.size. The kernel cuts an interrupted write at a page
// boundary, so every prefix of the file is a valid sequence of packets.
func (s *streamWriter) appendPadPages(uuid *[16]byte, pages int64) error {
	seq := s.tailInfo.Seq + 1
	if s.size == 0 {
		seq = s.tailInfo.Seq // the very first page is the tail itself
	}
	end := s.size
	for done := int64(0); done < pages; {
		n := min(pages-done, maxGrowth/pageSize)
		if int64(cap(s.growBuf)) < n*pageSize {
			s.growBuf = make([]byte, n*pageSize)
		}
		buf := s.growBuf[:n*pageSize]
		pi := s.tailInfo
		for i := range n {
			pi.Seq = seq + uint64(done+i)
			putPreamble(buf[i*pageSize:], uuid, &pi, PacketPreambleSize, pageSize)
		}
		if _, err := s.f.WriteAt(buf, end); err != nil {
			if terr := s.f.Truncate(s.size); terr != nil {
				s.err = fmt.Errorf("stream left unusable by a failed write: %w", errors.Join(err, terr))
			}
			return err
		}
		end += n * pageSize
		done += n
	}
	s.size = end
	return nil
}

// finish removes the tail packet, leaving exactly the written packets.
func (s *streamWriter) finish() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.err == nil {
		if err := s.f.Truncate(s.tail); err != nil {
			errs = append(errs, err)
		}
		if err := s.f.Sync(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.f.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing %s: %w", s.path, err)
	}
	return nil
}

// Sync flushes the metadata and all data stream files to stable storage
// (fsync). Crash safety against a killed process does not need Sync; it
// protects against power loss up to the moment it returns.
func (w *Writer) Sync() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	streams := make([]*streamWriter, 0, len(w.streams))
	for _, s := range w.streams {
		streams = append(streams, s)
	}
	w.mu.Unlock()
	var errs []error
	for _, s := range streams {
		s.mu.Lock()
		if !s.closed {
			if err := s.f.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("syncing %s: %w", s.path, err))
			}
		}
		s.mu.Unlock()
	}
	w.metaMu.Lock()
	if err := w.metaFile.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("syncing metadata of %s: %w", w.dir, err))
	}
	w.metaMu.Unlock()
	if err := syncDir(w.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// Close finishes the trace: it removes the empty tail packet of every data
// stream (so that files hold exactly the written packets), syncs all files
// and closes them. The Writer cannot be used afterwards.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	streams := make([]*streamWriter, 0, len(w.streams))
	for _, s := range w.streams {
		streams = append(streams, s)
	}
	w.mu.Unlock()
	var errs []error
	for _, s := range streams {
		errs = append(errs, s.finish())
	}
	w.metaMu.Lock()
	if err := w.metaFile.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("syncing metadata of %s: %w", w.dir, err))
	}
	if err := w.metaFile.Close(); err != nil {
		errs = append(errs, err)
	}
	w.metaMu.Unlock()
	if err := syncDir(w.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
