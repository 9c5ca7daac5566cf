package bytesize

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want int // -1: refused
	}{
		{"4096", 4096}, {"64K", 64 << 10}, {"64k", 64 << 10}, {"4m", 4 << 20}, {"4M", 4 << 20},
		{"4MiB", 4 << 20}, {"2MiB", 2 << 20}, {"1G", 1 << 30}, {"1GB", 1 << 30}, {"4G", 4 << 30},
		{" 8M ", 8 << 20},
		{"0", -1}, {"-1", -1}, {"-1K", -1}, {"K", -1}, {"1.5M", -1}, {"1T", -1}, {"", -1},
		{"18014398509482000K", -1}, {"9223372036854775807G", -1},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.want < 0 && err == nil || tt.want >= 0 && (err != nil || got != tt.want) {
			t.Errorf("Parse(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}
