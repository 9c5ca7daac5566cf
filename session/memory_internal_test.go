package session

import "testing"

func TestSizeString(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {1536, "1.5 KiB"},
		{64 << 20, "64 MiB"}, {256 << 20, "256 MiB"}, {3 << 29, "1.5 GiB"}, {1000 << 20, "1000 MiB"},
	} {
		if got := sizeString(c.n); got != c.want {
			t.Errorf("sizeString(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
