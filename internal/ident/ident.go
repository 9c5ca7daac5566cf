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
