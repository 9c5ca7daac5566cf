package perfetto

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// shortTable maps the interned string values of up to 16 bytes to their
// interning ids, in front of Writer.strIIDs, which holds them all. A
// string that short is its length and two words (shortKey), so a slot
// holds the string itself: a lookup hashes two words and compares them
// in the slot it reads, where the string map hashes the bytes and then
// reads them again behind the key's pointer, cache lines the output and
// the trace being read have often evicted.
//
// It is open addressing with linear probing, at most half full, hashed
// with a seed of its own so that crafted strings cannot be made to
// collide; a probe gives up after maxProbe slots. An insert that finds
// no free slot there doubles the table, up to the size that the most
// strings interned need, and then leaves the string to the map alone
// (spilled: a miss no longer proves that a string is new).
type shortTable struct {
	slots   []shortSlot // a power of two of them
	n       int         // slots used
	shift   uint        // 64 - log2(len(slots))
	seed    [2]uint64
	spilled bool
}

// shortSlot is a string of up to 16 bytes (n is its length + 1, 0 for
// an empty slot) and its interning id.
type shortSlot struct {
	a, b uint64
	n    uint32
	iid  uint32
}

const (
	maxShort     = 16
	maxProbe     = 64
	shortInitLog = 8  // 256 slots to begin with
	shortMaxLog  = 17 // 2^17 slots: twice maxInterned
)

// shortMaxLog follows maxInterned: neither constant compiles otherwise.
const (
	_ uint = 1<<shortMaxLog - 2*maxInterned
	_ uint = 2*maxInterned - 1<<shortMaxLog
)

func newShortTable() *shortTable {
	t := &shortTable{seed: [2]uint64{rand.Uint64(), rand.Uint64()}}
	t.resize(shortInitLog)
	return t
}

// shortKey returns the two words that, with its length, are s (of up to
// 16 bytes): its first and last 8 bytes, which overlap below 16, or for
// fewer than 8 its first and last 4, or for fewer than 4 its first,
// middle and last byte.
func shortKey(s []byte) (a, b uint64) {
	switch n := len(s); {
	case n >= 8:
		return binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint64(s[n-8:])
	case n >= 4:
		return uint64(binary.LittleEndian.Uint32(s)), uint64(binary.LittleEndian.Uint32(s[n-4:]))
	case n > 0:
		return uint64(s[0]) | uint64(s[n>>1])<<8 | uint64(s[n-1])<<16, 0
	}
	return 0, 0
}

// hash returns the hash of the string of length n and key a, b; its top
// bits index the table.
func (t *shortTable) hash(a, b uint64, n int) uint64 {
	hi, lo := bits.Mul64(a^t.seed[0], b^t.seed[1]^uint64(n))
	return (hi ^ lo) * 0x9e3779b97f4a7c15
}

// index returns the first slot to probe for key a, b, n.
func (t *shortTable) index(a, b uint64, n int) uint64 {
	return t.hash(a, b, n) >> t.shift
}

// find returns the interning id of the string of length n and key a, b.
func (t *shortTable) find(a, b uint64, n int) (uint64, bool) {
	mask := uint64(len(t.slots) - 1)
	i := t.index(a, b, n)
	for range maxProbe {
		s := &t.slots[i&mask]
		if s.n == uint32(n)+1 && s.a == a && s.b == b {
			return uint64(s.iid), true
		}
		if s.n == 0 {
			break
		}
		i++
	}
	return 0, false
}

// add adds the string of length n and key a, b, not in the table, with
// interning id iid.
func (t *shortTable) add(a, b uint64, n int, iid uint64) {
	if 2*(t.n+1) > len(t.slots) {
		t.resize(bits.Len(uint(len(t.slots))))
	}
	s := shortSlot{a: a, b: b, n: uint32(n) + 1, iid: uint32(iid)}
	for !t.put(s) {
		if len(t.slots) >= 1<<shortMaxLog {
			t.spilled = true
			return
		}
		t.resize(bits.Len(uint(len(t.slots))))
	}
}

// put puts s in the first free slot of its probe, if there is one.
func (t *shortTable) put(s shortSlot) bool {
	mask := uint64(len(t.slots) - 1)
	i := t.index(s.a, s.b, int(s.n-1))
	for range maxProbe {
		if p := &t.slots[i&mask]; p.n == 0 {
			*p = s
			t.n++
			return true
		}
		i++
	}
	return false
}

// resize rehashes the table into 2^log slots (a string that no longer
// fits spills).
func (t *shortTable) resize(log int) {
	old := t.slots
	t.slots, t.n, t.shift = make([]shortSlot, 1<<log), 0, uint(64-log)
	for _, s := range old {
		if s.n != 0 && !t.put(s) {
			t.spilled = true
		}
	}
}
