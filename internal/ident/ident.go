// Package ident checks the identifiers that name things across tracemark:
// marker providers, events and fields, module names and module metadata
// keys. All follow one rule, Pattern, so that each is a valid identifier in
// CTF metadata, CEL filters and file names alike. It imports nothing, so
// that package marker and the protocol may use it.
package ident

// Pattern is the rule Valid checks, for error messages.
const Pattern = "[a-z][a-z0-9_]*"

// Valid reports whether s matches Pattern: a lowercase ASCII letter, then
// lowercase letters, digits and underscores.
func Valid(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Printable reports whether s is text that trace metadata, logs and
// terminals take as it is: valid UTF-8 without control characters (the
// rule ctf applies to event names and modules).
func Printable(s string) bool {
	for i, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd && !validRuneAt(s, i) {
			return false
		}
	}
	return true
}

// validRuneAt reports whether the U+FFFD at s[i] is written in s, rather
// than the decoding of an invalid byte.
func validRuneAt(s string, i int) bool {
	return len(s)-i >= 3 && s[i] == 0xef && s[i+1] == 0xbf && s[i+2] == 0xbd
}
