package otlp

import (
	"encoding/binary"
	"math/bits"
)

// Begin's records are encoded a few bytes at a time, and most of those
// bytes are known when a class is prepared: the key of each attribute,
// the event name. Copying them with copy costs a call to memmove per
// piece, which was a fifth of the encoding; a piece of up to 16 bytes is
// kept as two words instead and stored whole into room the record has
// reserved (slack), after which the record is cut back to the piece's
// length.

// shortPiece is an encoded piece of up to 16 bytes, as two words.
type shortPiece struct {
	w [2]uint64
	n int // its length; 0 if the piece is longer than 16 bytes
}

// newShortPiece returns b as a shortPiece, or one of length 0 if b is
// empty or longer than 16 bytes.
func newShortPiece(b []byte) shortPiece {
	if len(b) == 0 || len(b) > 16 {
		return shortPiece{}
	}
	var buf [16]byte
	copy(buf[:], b)
	return shortPiece{w: [2]uint64{binary.LittleEndian.Uint64(buf[:]), binary.LittleEndian.Uint64(buf[8:])}, n: len(b)}
}

// put stores the piece's 16 bytes at r[at:], which must have room for
// them, and returns the offset after the piece's length.
func (p *shortPiece) put(r []byte, at int) int {
	binary.LittleEndian.PutUint64(r[at:], p.w[0])
	binary.LittleEndian.PutUint64(r[at+8:], p.w[1])
	return at + p.n
}

// reserve returns r with room for n more bytes beyond its length, and
// its length: the caller writes into r[len:len+n] by index, then cuts r
// to what it wrote.
func reserve(r []byte, n int) ([]byte, int) {
	l := len(r)
	if cap(r)-l < n {
		r = append(r[:cap(r)], make([]byte, n)...)
	}
	return r[:l+n], l
}

// putVarint stores v as a varint at r[at:], which must have room for 10
// bytes, and returns the offset after it.
func putVarint(r []byte, at int, v uint64) int {
	for v >= 0x80 {
		r[at] = byte(v) | 0x80
		v >>= 7
		at++
	}
	r[at] = byte(v)
	return at + 1
}

// fastVarintLen is varintLen without a loop.
func fastVarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }
