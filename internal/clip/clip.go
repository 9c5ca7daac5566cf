// Package clip shortens user input quoted in error messages, so that a
// hostile or mistaken megabyte of input gives a one-line error. It cuts at
// a rune boundary: the shortened text is valid UTF-8 wherever the input
// was, and an error printed with %q shows characters, not stray bytes.
package clip

import "unicode/utf8"

// String returns s if it is at most n bytes long, and otherwise its
// longest prefix of at most n bytes that does not split a UTF-8 sequence,
// followed by "…".
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if !utf8.RuneStart(s[cut]) { // not UTF-8 around the cut: keep n bytes
		cut = n
	}
	return s[:cut] + "…"
}
