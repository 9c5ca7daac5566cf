// Package bytesize parses the byte sizes that operators give tracemark:
// buffer and sub-buffer sizes, the memory budget, rotation sizes. One
// parser, so that every flag and variable accepts the same forms and
// refuses them with the same words; each caller checks its own range.
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tracemark/tracemark/internal/clip"
)

// Parse parses a positive byte size such as "4096", "64K", "4M", "4MiB",
// "1G" or "1GB" (powers of 1024, case-insensitive). It refuses sizes that
// overflow an int, so that a huge number cannot wrap around into a range
// the caller accepts.
func Parse(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := 0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		}
		if shift != 0 {
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt>>shift {
		return 0, fmt.Errorf("bad size %q: want a positive number with an optional K, M or G suffix", clip.String(s, 64))
	}
	return int(n) << shift, nil
}
