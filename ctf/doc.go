// Package ctf writes and reads traces in the Common Trace Format 1.8, the
// format of LTTng, readable by Babeltrace 2.
//
// # Trace directory
//
// A trace is a directory holding a plain-text TSDL file named "metadata"
// (first line "/* CTF 1.8 */") and one binary data stream file per stream,
// named channel0_<N> like LTTng's per-CPU files. Each marker of the tracing
// tool is an event class; all streams belong to a single stream class.
//
// # Binary layout
//
// All values are little-endian and every field is byte aligned (align = 8
// in the metadata), so records are position independent and contain no
// padding. A data stream file is a sequence of packets:
//
//	packet header   uint32 magic (0xC1FC1FC1); uint8 uuid[16]; uint32 stream_id (always 0)
//	packet context  uint64 timestamp_begin; uint64 timestamp_end;
//	                uint64 content_size; uint64 packet_size;   (in bits)
//	                uint64 packet_seq_num; uint64 events_discarded (cumulative);
//	                uint32 cpu_id
//	event records   up to content_size; padding up to packet_size
//
// The header and context take PacketPreambleSize (76) bytes. An event record
// is a 10-byte header (uint16 id; uint64 timestamp, at byte offset 2)
// followed by the payload fields in declaration order:
//
//   - Int and Uint fields of 8, 16, 32 or 64 bits; Float fields of 32 or 64
//     bits (IEEE 754);
//   - String fields: UTF-8 text followed by a NUL byte;
//   - Bytes fields: a uint32 length, then that many bytes; fixed-size
//     Bytes fields (FieldType.Bits set, such as trace ids) just their
//     Bits/8 bytes, declared as TSDL arrays of uint8;
//   - if the record's id is the class's TruncatedID (a class with
//     Truncation set), a final uint8 bitmask (bit i set: field i was
//     truncated by the recorder). Records with no field cut carry the
//     class's ID and have no trailer; the metadata declares the two ids
//     as event classes of the same name, the second with a note naming
//     the first (a comment /* tracemark: {...} */, which also carries span
//     declarations and which other TSDL readers skip).
//
// Timestamps count cycles of the trace's clock. In the metadata a field
// named f is declared as _f (TSDL readers strip one leading underscore, and
// no keyword can collide); the length of bytes field f is __f_len and the
// trailer is __truncated, so Babeltrace shows them as f, _f_len and
// _truncated.
//
// # Crash safety
//
// A process killed with SIGKILL at any moment leaves a trace that Babeltrace
// reads completely, up to the last packet WritePacket finished writing. The
// rules that make it so:
//
//   - The metadata file is complete for every event class before any packet
//     may use that class: AddEventClass writes the class's event block
//     before WritePacket accepts records of it (WritePacket checks every
//     record's class id), and metadata is only ever appended to.
//   - A kill cannot cut the metadata in the middle of a block. The kernel
//     copies write(2) data into the page cache page by page and a fatal
//     signal can stop a write between two pages, so a single write is not
//     atomic in general. A block that fits in the current last page is
//     appended with one write; otherwise the whole new metadata is written
//     to a hidden temporary file (readers ignore names starting with a dot)
//     that is renamed over the metadata file.
//   - Data stream files always end with an empty "tail" packet that covers
//     the rest of the file. A new packet's records and the next tail
//     packet's header are first written into the tail packet's padding,
//     where readers ignore them; then the new packet's header and context,
//     76 bytes within one page, overwrite the tail packet's and publish it.
//     Files grow by appending pages that are each a complete empty packet.
//     Readers skip empty packets, so after every write the file is a valid
//     sequence of packets. Packets are padded (by less than 76 bytes) when
//     needed to keep every header within one page.
//   - If growing a file fails (disk full), it is truncated back to its
//     former size (one atomic call), and the failed packet is not written.
//   - Close removes the tail packets, so that a closed trace holds exactly
//     the written packets (content_size equals packet_size except for that
//     padding).
//
// Sync additionally protects against power loss (fsync); crash safety
// against a killed process does not need it.
//
// # Reading
//
// Open parses the metadata written by Writer (not general TSDL) and Reader
// merges the events of all streams in timestamp order, with notices where
// events_discarded grows or packet_seq_num skips. Times in nanoseconds are
// computed like Babeltrace 2 computes them. Corrupt or truncated input
// yields a *CorruptError naming the file and byte offset; it never panics.
package ctf
