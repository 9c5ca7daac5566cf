package celfilter

import (
	"strings"
	"time"
)

// expandDurations rewrites the duration literals of a filter expression,
// such as `latency > 20ms`, into the CEL that means them,
// `latency > duration("20ms")`, before the expression is compiled: CEL
// has no duration literals, and an operator writing one got a syntax
// error with no hint. A literal is a Go duration (time.ParseDuration:
// 300ms, 1.5s, 1h30m, 10us or 10µs) standing alone: not inside a string,
// not part of an identifier or a longer number. Everything else is left
// as it is, so that the rewrite never changes a valid CEL expression.
func expandDurations(src string) string {
	var b strings.Builder
	last := 0 // src[last:i] is still to copy
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '"' || c == '\'':
			i = skipString(src, i)
		case isDigit(c) && (i == 0 || !isIdent(src[i-1]) && src[i-1] != '.'):
			end := durationEnd(src, i)
			if end < 0 {
				for i < len(src) && (isIdent(src[i]) || src[i] == '.') {
					i++ // the rest of this number or name
				}
				continue
			}
			b.WriteString(src[last:i])
			b.WriteString(`duration("`)
			b.WriteString(src[i:end])
			b.WriteString(`")`)
			i, last = end, end
		default:
			i++
		}
	}
	if last == 0 {
		return src
	}
	b.WriteString(src[last:])
	return b.String()
}

// durationEnd returns the end of the duration literal that starts at
// src[i], or -1 if there is none.
func durationEnd(src string, i int) int {
	j := i
	units := 0
	for j < len(src) && isDigit(src[j]) {
		for j < len(src) && isDigit(src[j]) {
			j++
		}
		if j+1 < len(src) && src[j] == '.' && isDigit(src[j+1]) {
			j++
			for j < len(src) && isDigit(src[j]) {
				j++
			}
		}
		n := unitLen(src[j:])
		if n == 0 {
			return -1
		}
		j += n
		units++
	}
	if units == 0 || j < len(src) && (isIdent(src[j]) || src[j] == '.' || src[j] >= 0x80) {
		return -1
	}
	if _, err := time.ParseDuration(src[i:j]); err != nil {
		return -1
	}
	return j
}

// unitLen returns the length of the duration unit at the start of s.
func unitLen(s string) int {
	for _, u := range []string{"ns", "us", "µs", "ms", "s", "m", "h"} {
		if strings.HasPrefix(s, u) {
			// "m" of "ms" is matched by "ms" first; "s" alone is seconds.
			return len(u)
		}
	}
	return 0
}

// skipString returns the index just after the string literal starting
// at src[i] (a quote; a r or b prefix is part of the identifier before
// it and makes no difference here but for escapes, which a raw string
// does not have).
func skipString(src string, i int) int {
	q := src[i]
	raw := i > 0 && (src[i-1] == 'r' || src[i-1] == 'R') && (i == 1 || !isIdent(src[i-2]) || src[i-2] == 'b' || src[i-2] == 'B')
	triple := strings.HasPrefix(src[i:], strings.Repeat(string(q), 3))
	if triple {
		end := strings.Index(src[i+3:], strings.Repeat(string(q), 3))
		if end < 0 {
			return len(src)
		}
		return i + 3 + end + 3
	}
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			if !raw {
				j++
			}
		case q:
			return j + 1
		}
	}
	return len(src)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c)
}
