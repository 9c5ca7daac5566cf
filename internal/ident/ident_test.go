package ident

import (
	"regexp"
	"testing"
)

var pattern = regexp.MustCompile("^" + Pattern + "$")

func TestValid(t *testing.T) {
	for _, s := range []string{"a", "http", "request_done", "h2", "a_1_b", "z9"} {
		if !Valid(s) {
			t.Errorf("Valid(%q) = false", s)
		}
	}
	for _, s := range []string{"", "_a", "1a", "A", "aB", "a-b", "a.b", "a:b", "a b", "é", "a\x00"} {
		if Valid(s) {
			t.Errorf("Valid(%q) = true", s)
		}
	}
}

// FuzzValid checks Valid against Pattern as a regular expression.
func FuzzValid(f *testing.F) {
	for _, s := range []string{"", "a", "a_b9", "_", "9", "aZ", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Valid(s), pattern.MatchString(s); got != want {
			t.Fatalf("Valid(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
