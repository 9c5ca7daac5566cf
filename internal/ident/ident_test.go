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

func TestPrintable(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "example.com/shop@v1.4.0": true, "café ✓": true, "\uFFFD": true,
		"a\nb": false, "a\x1b[31m": false, "a\x7f": false, "a\xffb": false, "\xef\xbf": false,
	} {
		if got := Printable(s); got != want {
			t.Errorf("Printable(%q) = %v, want %v", s, got, want)
		}
	}
}
