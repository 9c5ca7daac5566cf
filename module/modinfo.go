package module

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/tracemark/tracemark/internal/clip"
	"github.com/tracemark/tracemark/internal/ident"
)

// Custom section names of a module file.
const (
	// SectionModinfo holds the module's metadata (see Modinfo).
	SectionModinfo = "tracemark.modinfo"
	// SectionSignature holds the module's ed25519 signature (see Sign).
	SectionSignature = "tracemark.sig"
)

// Limits of the metadata section, so that a hostile file cannot make the
// host allocate or print much.
const (
	MaxModinfoBytes   = 16 << 10 // the whole section payload
	MaxModinfoEntries = 64
	MaxModinfoValue   = 1024 // bytes in one value
	maxNameLen        = 64
)

// Errors about a module's metadata.
var (
	// ErrNoModinfo means the module has no tracemark.modinfo section.
	ErrNoModinfo = errors.New("no module metadata")
	// ErrBadModinfo is wrapped by errors about a malformed or oversized
	// metadata section.
	ErrBadModinfo = errors.New("malformed module metadata")
)

// Modinfo is a module's metadata, like the kernel's .modinfo: stored in the
// tracemark.modinfo custom section as a sequence of UTF-8 "key=value"
// entries, each followed by a NUL byte. name and abi are required; the
// known keys are below and any other key [a-z][a-z0-9_]* is kept in Extra.
// Values may not contain control characters (so that printing them is
// safe). The section payload is at most MaxModinfoBytes, with at most
// MaxModinfoEntries entries of at most MaxModinfoValue bytes each.
type Modinfo struct {
	// Name identifies the module in the host: [a-z][a-z0-9_]*, at most 64
	// bytes. Key "name".
	Name string `json:"name"`
	// Version is free-form, such as "v1.2.0". Key "version".
	Version string `json:"version,omitempty"`
	// Description is one line for operators. Key "description".
	Description string `json:"description,omitempty"`
	// Author names who wrote the module. Key "author".
	Author string `json:"author,omitempty"`
	// License is a kernel licence string or an SPDX expression; see
	// GPLCompatible. Empty means proprietary. Key "license".
	License string `json:"license,omitempty"`
	// ABI is the host ABI version the module was built for. Key "abi",
	// a decimal number.
	ABI int `json:"abi"`
	// Extra holds any other keys.
	Extra map[string]string `json:"extra,omitempty"`
}

// GPLCompatible reports whether the module's licence is GPL-compatible.
func (m *Modinfo) GPLCompatible() bool { return GPLCompatible(m.License) }

func (m *Modinfo) entries() [][2]string {
	e := [][2]string{{"name", m.Name}}
	for _, kv := range [][2]string{{"version", m.Version}, {"description", m.Description}, {"author", m.Author}, {"license", m.License}} {
		if kv[1] != "" {
			e = append(e, kv)
		}
	}
	e = append(e, [2]string{"abi", strconv.Itoa(m.ABI)})
	for _, k := range slices.Sorted(maps.Keys(m.Extra)) {
		e = append(e, [2]string{k, m.Extra[k]})
	}
	return e
}

func knownKey(k string) bool {
	switch k {
	case "name", "version", "description", "author", "license", "abi":
		return true
	}
	return false
}

// MarshalBinary encodes the metadata as the section payload: the keys
// name, version, description, author, license, abi, then Extra in key
// order; empty optional values are left out.
func (m *Modinfo) MarshalBinary() ([]byte, error) {
	for k := range m.Extra {
		if knownKey(k) {
			return nil, fmt.Errorf("%w: extra key %q is a known key", ErrBadModinfo, k)
		}
	}
	var b []byte
	for _, kv := range m.entries() {
		b = append(b, kv[0]...)
		b = append(b, '=')
		b = append(b, kv[1]...)
		b = append(b, 0)
	}
	// Parse what we wrote: one set of rules for both directions.
	if _, err := ParseModinfo(b); err != nil {
		return nil, err
	}
	return b, nil
}

// ParseModinfo decodes and validates a metadata section payload.
func ParseModinfo(b []byte) (*Modinfo, error) {
	if len(b) > MaxModinfoBytes {
		return nil, fmt.Errorf("%w: section of %d bytes is over the limit of %d", ErrBadModinfo, len(b), MaxModinfoBytes)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty section", ErrBadModinfo)
	}
	if b[len(b)-1] != 0 {
		return nil, fmt.Errorf("%w: last entry is not NUL-terminated", ErrBadModinfo)
	}
	m := &Modinfo{}
	seen := map[string]bool{}
	n := 0
	for rest := b[:len(b)-1]; ; {
		entry, after, more := bytes.Cut(rest, []byte{0})
		n++
		if n > MaxModinfoEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrBadModinfo, MaxModinfoEntries)
		}
		k, v, ok := bytes.Cut(entry, []byte{'='})
		key := string(k)
		if !ok {
			return nil, fmt.Errorf("%w: entry %d has no '='", ErrBadModinfo, n)
		}
		if !validName(key, 32) {
			return nil, fmt.Errorf("%w: entry %d: bad key %q", ErrBadModinfo, n, clip.String(key, 40))
		}
		if seen[key] {
			return nil, fmt.Errorf("%w: key %q appears twice", ErrBadModinfo, key)
		}
		seen[key] = true
		if len(v) > MaxModinfoValue {
			return nil, fmt.Errorf("%w: value of %q is %d bytes, over the limit of %d", ErrBadModinfo, key, len(v), MaxModinfoValue)
		}
		if err := checkText(v); err != nil {
			return nil, fmt.Errorf("%w: value of %q %v", ErrBadModinfo, key, err)
		}
		val := string(v)
		switch key {
		case "name":
			m.Name = val
		case "version":
			m.Version = val
		case "description":
			m.Description = val
		case "author":
			m.Author = val
		case "license":
			m.License = val
		case "abi":
			abi, err := strconv.Atoi(val)
			if err != nil || abi < 1 || abi > 65535 || val != strconv.Itoa(abi) {
				return nil, fmt.Errorf("%w: abi %q is not a version number", ErrBadModinfo, clip.String(val, 40))
			}
			m.ABI = abi
		default:
			if m.Extra == nil {
				m.Extra = map[string]string{}
			}
			m.Extra[key] = val
		}
		if !more {
			break
		}
		rest = after
	}
	switch {
	case !seen["name"]:
		return nil, fmt.Errorf("%w: no name", ErrBadModinfo)
	case !validName(m.Name, maxNameLen):
		return nil, fmt.Errorf("%w: name %q is not %s of at most %d bytes", ErrBadModinfo, clip.String(m.Name, 40), ident.Pattern, maxNameLen)
	case !seen["abi"]:
		return nil, fmt.Errorf("%w: no abi", ErrBadModinfo)
	}
	return m, nil
}

// validName reports whether s is an identifier (ident.Pattern) of at most
// max bytes.
func validName(s string, max int) bool { return len(s) <= max && ident.Valid(s) }

// checkText refuses invalid UTF-8 and control characters.
func checkText(v []byte) error {
	if !utf8.Valid(v) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range string(v) {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("contains control character %U", r)
		}
	}
	return nil
}
