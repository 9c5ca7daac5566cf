package perfetto

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
)

// shortStrings returns every string of up to 11 bytes over the alphabet
// {a, b} and random ones of 12 to 16 bytes over {a, b, é's bytes}, whose
// keys are the hardest to keep apart: they differ in a byte or two.
func shortStrings() []string {
	var out []string
	for n := 0; n <= 11; n++ {
		for m := range 1 << n {
			var sb strings.Builder
			for i := range n {
				sb.WriteByte("ab"[m>>i&1])
			}
			out = append(out, sb.String())
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	for range 20000 {
		b := make([]byte, 12+r.IntN(5))
		for i := range b {
			b[i] = "ab\xc3\xa9"[r.IntN(4)]
		}
		if !seen[string(b)] {
			seen[string(b)] = true
			out = append(out, string(b))
		}
	}
	return out
}

// TestShortKey checks that the key of a string of up to 16 bytes is the
// string: distinct strings have distinct keys.
func TestShortKey(t *testing.T) {
	type key struct {
		n    int
		a, b uint64
	}
	seen := map[key]string{}
	for _, s := range shortStrings() {
		a, b := shortKey([]byte(s))
		k := key{len(s), a, b}
		if o, dup := seen[k]; dup && o != s {
			t.Fatalf("%q and %q have the same key", o, s)
		}
		seen[k] = s
	}
}

// TestShortTable adds many strings, growing the table, and finds each
// with its id and none it does not hold.
func TestShortTable(t *testing.T) {
	tab := newShortTable()
	strs := shortStrings()
	half := len(strs) / 2
	for i, s := range strs[:half] {
		a, b := shortKey([]byte(s))
		if _, ok := tab.find(a, b, len(s)); ok {
			t.Fatalf("%q found before it is added", s)
		}
		tab.add(a, b, len(s), uint64(i+1))
	}
	if tab.spilled {
		t.Fatal("the table spilled with a random seed")
	}
	for i, s := range strs {
		a, b := shortKey([]byte(s))
		iid, ok := tab.find(a, b, len(s))
		if want := i < half; ok != want || ok && iid != uint64(i+1) {
			t.Fatalf("%q: find = %d, %v; want %d, %v", s, iid, ok, i+1, want)
		}
	}
	if 2*tab.n > len(tab.slots) {
		t.Errorf("%d slots of %d used", tab.n, len(tab.slots))
	}
}

// collidingStrings returns n strings of 8 ASCII letters and digits
// whose first probe is slot 0 of table t at any size it may take.
func collidingStrings(t *shortTable, n int) []string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
	var out []string
	s := make([]byte, 8)
	for i := uint64(0); len(out) < n; i++ {
		for j := range s {
			s[j] = digits[i>>(6*j)&63]
		}
		a, b := shortKey(s)
		if t.hash(a, b, len(s))>>(64-shortMaxLog) == 0 {
			out = append(out, string(s))
		}
	}
	return out
}

// TestShortTableSpills fills a probe: the table grows to its largest
// size, where the strings past maxProbe spill to the map; the writer
// interns each string once, finds the ones in the table there and the
// spilled ones in the map, and writes each value as its interning id.
func TestShortTableSpills(t *testing.T) {
	class := ctf.EventClass{ID: 0, Name: "k:v", Fields: []ctf.Field{{Name: "s", Type: ctf.FieldType{Kind: ctf.String}}}}
	w, err := NewWriter(&bytes.Buffer{}, ctf.TraceInfo{}, []ctf.EventClass{class})
	if err != nil {
		t.Fatal(err)
	}
	strs := collidingStrings(w.short, maxProbe+2)
	for round := range 2 {
		for i, s := range strs {
			ev := ctf.Event{Class: &class, Time: int64(100*round + i), Fields: []ctf.Value{ctf.StringValue(s)}}
			if err := w.WriteEvent(&ev); err != nil {
				t.Fatal(err)
			}
			if got := w.strIIDs[s]; got != uint64(i+1) {
				t.Fatalf("round %d: %q has id %d, want %d", round, s, got, i+1)
			}
			// A packet that interns nothing ends with the value's id.
			if last := w.out[len(w.out)-1]; round == 1 && uint64(last) != uint64(i+1) {
				t.Fatalf("%q written as id %d, want %d", s, last, i+1)
			}
		}
	}
	if len(w.short.slots) != 1<<shortMaxLog {
		t.Fatalf("the table has %d slots, want %d", len(w.short.slots), 1<<shortMaxLog)
	}
	if !w.short.spilled || len(w.strIIDs) != len(strs) || len(w.strs) != len(strs) {
		t.Errorf("spilled %v, %d strings interned, want a spill and %d", w.short.spilled, len(w.strIIDs), len(strs))
	}
	for i, s := range strs {
		a, b := shortKey([]byte(s))
		iid, ok := w.short.find(a, b, len(s))
		if want := i < maxProbe; ok != want || ok && iid != uint64(i+1) {
			t.Errorf("%q: in the table %v (id %d), want %v", s, ok, iid, want)
		}
	}
}
