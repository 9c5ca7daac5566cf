// Package encode holds the value encoders shared by the output formats of
// package format: JSON strings, Go-quoted strings, floating point numbers,
// fixed-point seconds and RFC 3339 timestamps, all as append functions that
// do not allocate.
package encode

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tracemark/tracemark/ctf"
)

// Provider returns the provider of an event name: the part before the
// first ':', or the whole name if it has none ("http:request" → "http",
// "floats" → "floats").
func Provider(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, quotes included. '"', '\\'
// and control characters are escaped (\n, \r, \t, \b, \f or \u00XX), as are
// U+2028 and U+2029 (valid JSON, but not JavaScript source); bytes that are
// not valid UTF-8 become U+FFFD, since JSON text must be UTF-8. Everything
// else is copied as is.
func AppendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, to be copied as is
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// decodeRune decodes the first rune of s, like utf8.DecodeRune.
func decodeRune[S ~string | ~[]byte](s S) (rune, int) {
	// Converting at most 4 bytes to a string that does not escape does not
	// allocate.
	return utf8.DecodeRuneInString(string(s[:min(len(s), utf8.UTFMax)]))
}

// AppendQuote appends s as a double-quoted Go string literal, exactly like
// strconv.AppendQuote: printable runes (strconv.IsPrint) are copied,
// '"' and '\\' are escaped, other runes use \a \b \f \n \r \t \v, \xNN
// (control characters below U+0080 and bytes that are not valid UTF-8),
// \uNNNN or \UNNNNNNNN. strconv.Unquote gives s back.
func AppendQuote[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			r, size = decodeRune(s[i:])
			if size > 1 && strconv.IsPrint(r) {
				i += size
				continue
			}
		}
		dst = append(dst, s[start:i]...)
		switch {
		case size == 1 && c >= utf8.RuneSelf: // invalid UTF-8
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\a':
			dst = append(dst, '\\', 'a')
		case r == '\b':
			dst = append(dst, '\\', 'b')
		case r == '\f':
			dst = append(dst, '\\', 'f')
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r == '\v':
			dst = append(dst, '\\', 'v')
		case r < ' ' || r == 0x7f:
			dst = append(dst, '\\', 'x', hexDigits[r>>4], hexDigits[r&0xf])
		case r < 0x10000:
			dst = append(dst, '\\', 'u')
			for shift := 12; shift >= 0; shift -= 4 {
				dst = append(dst, hexDigits[r>>uint(shift)&0xf])
			}
		default:
			dst = append(dst, '\\', 'U')
			for shift := 28; shift >= 0; shift -= 4 {
				dst = append(dst, hexDigits[r>>uint(shift)&0xf])
			}
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendHex appends b in lower-case hexadecimal, two digits a byte.
func AppendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// AppendFloat appends v (a value of a float field of the given width, 32
// or 64 bits) in the shortest decimal form that reads back as the same
// value, as JavaScript and encoding/json print numbers: plain decimal
// notation for magnitudes in [1e-6, 1e21), exponent notation otherwise.
// A ".0" is added to integral values so that they still read as floats
// ("2.0", "-0.0"). NaN and the infinities are "NaN", "+Inf" and "-Inf"
// (the strings strconv.ParseFloat accepts).
func AppendFloat(dst []byte, v float64, bits int) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	}
	return appendFinite(dst, v, bits)
}

// AppendJSONFloat appends v like AppendFloat for finite values, and NaN
// and the infinities as the JSON strings "NaN", "Infinity" and
// "-Infinity", the encoding of the protobuf JSON mapping (JSON has no such
// numbers).
func AppendJSONFloat(dst []byte, v float64, bits int) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(dst, `"-Infinity"`...)
	}
	return appendFinite(dst, v, bits)
}

func appendFinite(dst []byte, v float64, bits int) []byte {
	if bits != 32 {
		bits = 64
	}
	start := len(dst)
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		dst = strconv.AppendFloat(dst, v, 'e', -1, bits)
		// Turn "e-07" into "e-7" and "e+21" into "e+21" (unchanged).
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
		return dst
	}
	dst = strconv.AppendFloat(dst, v, 'f', -1, bits)
	for _, c := range dst[start:] {
		if c == '.' {
			return dst
		}
	}
	return append(dst, '.', '0')
}

// AppendSeconds appends ns nanoseconds as seconds with nine decimals,
// "-1.500000000" or "0.000012345". minIntDigits pads the integer part with
// spaces to at least that many digits (ftrace style), 0 for no padding.
func AppendSeconds(dst []byte, ns int64, minIntDigits int) []byte {
	return appendFixed(dst, ns, 1e9, 9, minIntDigits)
}

// AppendMicros appends ns nanoseconds as microseconds with three
// decimals: "12.345", "-0.001".
func AppendMicros(dst []byte, ns int64) []byte {
	return appendFixed(dst, ns, 1e3, 3, 0)
}

// appendFixed appends v/unit with the given number of decimals (unit is
// 10^decimals), exactly.
func appendFixed(dst []byte, v int64, unit uint64, decimals, minIntDigits int) []byte {
	u := uint64(v)
	neg := v < 0
	if neg {
		u = -u // works for math.MinInt64 too
	}
	ip, fp := u/unit, u%unit
	var buf [24]byte
	digits := strconv.AppendUint(buf[:0], ip, 10)
	pad := minIntDigits - len(digits)
	if neg {
		pad--
	}
	for ; pad > 0; pad-- {
		dst = append(dst, ' ')
	}
	if neg {
		dst = append(dst, '-')
	}
	dst = append(dst, digits...)
	dst = append(dst, '.')
	var frac [9]byte
	for i := decimals - 1; i >= 0; i-- {
		frac[i] = byte('0' + fp%10)
		fp /= 10
	}
	return append(dst, frac[:decimals]...)
}

// TimeLayout is the layout of the timestamps Clock appends: RFC 3339 with
// exactly nine fractional digits, so that timestamps sort as text.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Clock appends wall-clock timestamps in TimeLayout. It caches the
// formatted date and time of the last second seen, so that consecutive
// events of the same second cost little more than nine digits. The zero
// Clock uses UTC. A Clock is not safe for concurrent use.
type Clock struct {
	// Location is the time zone of the timestamps; nil means UTC.
	Location *time.Location

	valid  bool
	sec    int64
	prefix []byte // "2006-01-02T15:04:05"
	suffix []byte // "Z07:00"
}

// Append appends the instant ns nanoseconds after the Unix epoch.
func (c *Clock) Append(dst []byte, ns int64) []byte {
	sec, frac := ns/1e9, ns%1e9
	if frac < 0 {
		sec--
		frac += 1e9
	}
	if !c.valid || sec != c.sec {
		loc := c.Location
		if loc == nil {
			loc = time.UTC
		}
		t := time.Unix(sec, 0).In(loc)
		c.prefix = t.AppendFormat(c.prefix[:0], "2006-01-02T15:04:05")
		c.suffix = t.AppendFormat(c.suffix[:0], "Z07:00")
		c.sec, c.valid = sec, true
	}
	dst = append(dst, c.prefix...)
	dst = append(dst, '.')
	var digits [9]byte
	for i := 8; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	dst = append(dst, digits[:]...)
	return append(dst, c.suffix...)
}

// JSONKeys renders the member keys of an event class's fields once:
// keys[i] is `"name":`, with a leading comma after the first, and
// quoted[i] is the quoted name alone.
func JSONKeys(fields []ctf.Field) (keys [][]byte, quoted []string) {
	for i, f := range fields {
		var k []byte
		if i > 0 {
			k = append(k, ',')
		}
		name := AppendJSONString(nil, f.Name)
		k = append(k, name...)
		k = append(k, ':')
		keys = append(keys, k)
		quoted = append(quoted, string(name))
	}
	return keys, quoted
}

// AppendJSONFields appends an event's fields as JSON object members:
// keys[i] is the precomputed `"name":` (with a leading comma after the
// first), and appendValue renders a value of a field of the given bit
// width in the caller's format.
func AppendJSONFields(dst []byte, keys [][]byte, ev *ctf.Event, appendValue func([]byte, ctf.Value, int) []byte) []byte {
	for i, v := range ev.Fields {
		if i < len(keys) {
			dst = append(dst, keys[i]...)
		} else { // not reached with events from ctf.Reader
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `"_`...)
			dst = strconv.AppendInt(dst, int64(i), 10)
			dst = append(dst, `":`...)
		}
		bits := 64
		if i < len(ev.Class.Fields) {
			bits = ev.Class.Fields[i].Type.Bits
		}
		dst = appendValue(dst, v, bits)
	}
	return dst
}
