package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// FrameType identifies a frame of an event stream.
type FrameType byte

// Frame types. A client skips frames of types it does not know.
const (
	// FrameHello opens a stream: JSON [Hello].
	FrameHello FrameType = 'H'
	// FrameClasses announces event classes: JSON [Classes]. It comes
	// before the first packet holding records of those classes.
	FrameClasses FrameType = 'C'
	// FramePacket carries one CTF packet: see [PacketHeader].
	FramePacket FrameType = 'P'
	// FrameSync follows the packets of one drain of the session's
	// buffers (no payload). Every stream was read up to about the same
	// instant, so a client printing events may sort those since the
	// previous sync frame by timestamp.
	FrameSync FrameType = 'Y'
	// FrameStats carries the session's counters: JSON [Stats].
	FrameStats FrameType = 'S'
	// FrameEnd closes a stream: JSON [End]. Nothing follows it.
	FrameEnd FrameType = 'E'
	// FrameGoTrace carries bytes of Go's execution trace (see
	// RecordRequest.GoTrace): the payloads of a stream's FrameGoTrace
	// frames, in order, are a trace file that go tool trace reads. The
	// last one comes before the end frame.
	FrameGoTrace FrameType = 'G'
)

// String returns the frame type's name, such as "packet".
func (t FrameType) String() string {
	switch t {
	case FrameHello:
		return "hello"
	case FrameClasses:
		return "classes"
	case FramePacket:
		return "packet"
	case FrameSync:
		return "sync"
	case FrameStats:
		return "stats"
	case FrameEnd:
		return "end"
	case FrameGoTrace:
		return "go-trace"
	}
	return fmt.Sprintf("frame(%#x)", byte(t))
}

// Frame layout constants.
const (
	// FrameHeaderSize is the size of a frame header: uint8 type, three
	// zero bytes, uint32 little-endian payload length.
	FrameHeaderSize = 8
	// MaxFramePayload bounds a frame's payload. A packet frame holds at
	// most one sub-buffer (2 MiB at most) plus its header.
	MaxFramePayload = 4 << 20
	// PacketHeaderSize is the size of a packet frame's header, before the
	// records.
	PacketHeaderSize = 40
)

// ErrFrame is wrapped by errors about malformed frames.
var ErrFrame = errors.New("malformed frame")

// PacketHeader is the start of a packet frame's payload, followed by the
// records unchanged (CTF event records as the session recorded them):
//
//	uint32 stream | uint32 events | uint64 seq | uint64 begin_ts |
//	uint64 end_ts | uint64 discarded (cumulative for the stream)
//
// all little-endian. It fills the CTF packet context.
type PacketHeader struct {
	Stream         uint32
	Events         uint32
	Seq            uint64
	BeginTS, EndTS uint64
	Discarded      uint64
}

// FrameWriter writes frames. It is not safe for concurrent use.
type FrameWriter struct {
	w   io.Writer
	hdr [FrameHeaderSize + PacketHeaderSize]byte
}

// NewFrameWriter returns a FrameWriter writing to w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// WriteJSON writes a frame whose payload is v in JSON.
func (fw *FrameWriter) WriteJSON(t FrameType, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return fw.write(t, nil, b)
}

// WriteEmpty writes a frame without payload, such as a sync frame.
func (fw *FrameWriter) WriteEmpty(t FrameType) error { return fw.write(t, nil, nil) }

// WriteBytes writes a frame whose payload is b, such as a FrameGoTrace
// frame.
func (fw *FrameWriter) WriteBytes(t FrameType, b []byte) error { return fw.write(t, nil, b) }

// WritePacket writes a packet frame.
func (fw *FrameWriter) WritePacket(h PacketHeader, records []byte) error {
	var ph [PacketHeaderSize]byte
	binary.LittleEndian.PutUint32(ph[0:], h.Stream)
	binary.LittleEndian.PutUint32(ph[4:], h.Events)
	binary.LittleEndian.PutUint64(ph[8:], h.Seq)
	binary.LittleEndian.PutUint64(ph[16:], h.BeginTS)
	binary.LittleEndian.PutUint64(ph[24:], h.EndTS)
	binary.LittleEndian.PutUint64(ph[32:], h.Discarded)
	return fw.write(FramePacket, ph[:], records)
}

// write writes a header and a payload made of two parts, with as few
// writes as possible and no copy of the (possibly large) second part.
func (fw *FrameWriter) write(t FrameType, a, b []byte) error {
	n := len(a) + len(b)
	if n > MaxFramePayload {
		return fmt.Errorf("%w: %s payload of %d bytes exceeds %d", ErrFrame, t, n, MaxFramePayload)
	}
	h := fw.hdr[:FrameHeaderSize]
	h[0], h[1], h[2], h[3] = byte(t), 0, 0, 0
	binary.LittleEndian.PutUint32(h[4:], uint32(n))
	h = append(h, a...)
	if _, err := fw.w.Write(h); err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	_, err := fw.w.Write(b)
	return err
}

// Frame is one frame read by a FrameReader. Payload is valid until the
// next call to Next.
type Frame struct {
	Type    FrameType
	Payload []byte
}

// FrameReader reads frames. It is not safe for concurrent use.
type FrameReader struct {
	r   io.Reader
	buf []byte
}

// NewFrameReader returns a FrameReader reading from r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: r} }

// Next reads the next frame. It returns io.EOF at a clean end of input
// between frames, and io.ErrUnexpectedEOF (wrapped) inside one.
func (fr *FrameReader) Next() (Frame, error) {
	var h [FrameHeaderSize]byte
	if _, err := io.ReadFull(fr.r, h[:]); err != nil {
		return Frame{}, err
	}
	if h[1] != 0 || h[2] != 0 || h[3] != 0 {
		return Frame{}, fmt.Errorf("%w: reserved header bytes are not zero", ErrFrame)
	}
	n := binary.LittleEndian.Uint32(h[4:])
	if n > MaxFramePayload {
		return Frame{}, fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrFrame, n, MaxFramePayload)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	fr.buf = fr.buf[:n]
	if _, err := io.ReadFull(fr.r, fr.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("reading %s frame: %w", FrameType(h[0]), err)
	}
	return Frame{Type: FrameType(h[0]), Payload: fr.buf}, nil
}

// Swap hands the caller the buffer that holds the payload of the frame
// Next returned last, to keep: the next frames are read into spare
// instead (or into a new buffer, if spare is too small for one). It lets
// a reader give a packet to another goroutine without copying it.
func (fr *FrameReader) Swap(spare []byte) []byte {
	b := fr.buf
	fr.buf = spare[:0]
	return b
}

// Packet decodes a packet frame's payload. The records alias the payload.
func (f Frame) Packet() (PacketHeader, []byte, error) {
	p := f.Payload
	if f.Type != FramePacket || len(p) < PacketHeaderSize {
		return PacketHeader{}, nil, fmt.Errorf("%w: %s frame of %d bytes is not a packet", ErrFrame, f.Type, len(p))
	}
	h := PacketHeader{
		Stream:    binary.LittleEndian.Uint32(p[0:]),
		Events:    binary.LittleEndian.Uint32(p[4:]),
		Seq:       binary.LittleEndian.Uint64(p[8:]),
		BeginTS:   binary.LittleEndian.Uint64(p[16:]),
		EndTS:     binary.LittleEndian.Uint64(p[24:]),
		Discarded: binary.LittleEndian.Uint64(p[32:]),
	}
	return h, p[PacketHeaderSize:], nil
}

// JSON decodes a JSON frame's payload into v. Unknown fields are ignored:
// newer agents may add some.
func (f Frame) JSON(v any) error {
	if err := json.Unmarshal(f.Payload, v); err != nil {
		return fmt.Errorf("%w: %s frame: %v", ErrFrame, f.Type, err)
	}
	return nil
}
