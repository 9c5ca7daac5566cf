package cstring

import (
	"bytes"
	"testing"
)

// Index agrees with bytes.IndexByte wherever the NUL is, if anywhere:
// in each of the eight-byte words, past the 64 bytes tested by words,
// in the tail shorter than a word, with bytes of every value around it.
func TestIndexSameAsIndexByte(t *testing.T) {
	for n := range 140 {
		for at := -1; at < n; at++ {
			for _, fill := range []byte{1, 0x80, 0xff, 0x7f} {
				b := bytes.Repeat([]byte{fill}, n)
				if at >= 0 {
					b[at] = 0
					if at+1 < n {
						b[at+1] = 0 // a second NUL must not be found first
					}
				}
				if got, want := Index(b), bytes.IndexByte(b, 0); got != want {
					t.Fatalf("len %d, NUL at %d, fill %#x: Index = %d, want %d", n, at, fill, got, want)
				}
			}
		}
	}
}

// TestIndexWordAtATime compares the word-at-a-time search with bytes.IndexByte
// for every length up to 100 and every position of the first NUL.
func TestIndexWordAtATime(t *testing.T) {
	for n := range 101 {
		b := bytes.Repeat([]byte{'a'}, n)
		if got := Index(b); got != -1 {
			t.Fatalf("Index of %d bytes without NUL = %d", n, got)
		}
		for z := range n {
			c := bytes.Clone(b)
			c[z] = 0
			if z+1 < n {
				c[n-1] = 0 // a later NUL does not count
			}
			if got := Index(c); got != z {
				t.Fatalf("Index of %d bytes with a NUL at %d = %d", n, z, got)
			}
		}
	}
	// Bytes that a word-at-a-time test could take for a NUL: 0x80 and
	// above before it, 0x01 after it (where a borrow reaches).
	for n := range 101 {
		b := make([]byte, n)
		for i := range b {
			b[i] = [...]byte{0x80, 0xff, 0x01, 0x81, 'a'}[i%5]
		}
		if got := Index(b); got != -1 {
			t.Fatalf("Index of %d bytes %x without NUL = %d", n, b, got)
		}
		for z := range n {
			c := bytes.Clone(b)
			c[z] = 0
			for i := z + 1; i < n; i++ {
				c[i] = 0x01
			}
			if got := Index(c); got != z {
				t.Fatalf("Index of %x, a NUL at %d = %d", c, z, got)
			}
		}
	}
}

func FuzzIndex(f *testing.F) {
	f.Add([]byte("hello\x00world"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Index(b), bytes.IndexByte(b, 0); got != want {
			t.Fatalf("Index(%q) = %d, want %d", b, got, want)
		}
	})
}
