package clip_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tracemark/tracemark/internal/clip"
)

func TestString(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 40, "short"},
		{strings.Repeat("a", 40), 40, strings.Repeat("a", 40)},
		{strings.Repeat("a", 41), 40, strings.Repeat("a", 40) + "…"},
		// "é" is 2 bytes: a cut at byte 40 would split the one at 39–40.
		{strings.Repeat("a", 39) + "éé", 40, strings.Repeat("a", 39) + "…"},
		// "€" is 3 bytes at 38–40.
		{strings.Repeat("a", 38) + "€b", 40, strings.Repeat("a", 38) + "…"},
		// Not UTF-8: bytes are kept as they are.
		{strings.Repeat("\xff", 50), 40, strings.Repeat("\xff", 40) + "…"},
	}
	for _, tt := range tests {
		got := clip.String(tt.in, tt.n)
		if got != tt.want {
			t.Errorf("String(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if utf8.ValidString(tt.in) && !utf8.ValidString(got) {
			t.Errorf("String(%q, %d) = %q: not UTF-8", tt.in, tt.n, got)
		}
	}
}

func TestStringEveryCut(t *testing.T) {
	s := strings.Repeat("aé€😀", 20)
	for n := 0; n < len(s); n++ {
		got := clip.String(s, n)
		if !utf8.ValidString(got) || !strings.HasPrefix(s, strings.TrimSuffix(got, "…")) || len(got) > n+len("…") {
			t.Fatalf("String(s, %d) = %q", n, got)
		}
	}
}
