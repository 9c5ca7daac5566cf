// Package cstring finds the NUL that ends a CTF string field.
package cstring

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Index is bytes.IndexByte(b, 0), faster for the short strings most
// fields hold: it tests eight bytes at a time, without a call, for the
// first 64 bytes before handing a long string to bytes.IndexByte.
func Index(b []byte) int {
	i := 0
	for limit := min(len(b), 64); i+8 <= limit; i += 8 {
		// The lowest byte flagged is the first NUL: bytes above it may
		// be flagged too, by the borrow, but none below.
		w := binary.LittleEndian.Uint64(b[i : i+8])
		if m := (w - 0x0101010101010101) &^ w & 0x8080808080808080; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	if len(b)-i < 8 {
		for ; i < len(b); i++ {
			if b[i] == 0 {
				return i
			}
		}
		return -1
	}
	if j := bytes.IndexByte(b[i:], 0); j >= 0 {
		return i + j
	}
	return -1
}
