package module

import (
	"slices"
	"strings"
)

// The kernel's GPL-compatible MODULE_LICENSE strings (include/linux/module.h
// and license_is_gpl_compatible), matched exactly, as the kernel does.
var kernelLicenses = []string{
	"GPL",
	"GPL v2",
	"GPL and additional rights",
	"Dual BSD/GPL",
	"Dual MIT/GPL",
	"Dual MPL/GPL",
}

// SPDX identifiers of licences the FSF lists as GPL-compatible, matched
// case-insensitively as SPDX requires. Apache-2.0 is compatible with GPLv3
// only, MPL-2.0 through its secondary-licence clause; both are counted, as
// a module under them may be combined with GPL code.
var spdxLicenses = []string{
	"0BSD",
	"AGPL-3.0", "AGPL-3.0-only", "AGPL-3.0-or-later",
	"Apache-2.0",
	"Artistic-2.0",
	"BSD-2-Clause", "BSD-3-Clause",
	"BSL-1.0",
	"CC0-1.0",
	"GPL-2.0", "GPL-2.0+", "GPL-2.0-only", "GPL-2.0-or-later",
	"GPL-3.0", "GPL-3.0+", "GPL-3.0-only", "GPL-3.0-or-later",
	"ISC",
	"LGPL-2.0", "LGPL-2.0+", "LGPL-2.0-only", "LGPL-2.0-or-later",
	"LGPL-2.1", "LGPL-2.1+", "LGPL-2.1-only", "LGPL-2.1-or-later",
	"LGPL-3.0", "LGPL-3.0+", "LGPL-3.0-only", "LGPL-3.0-or-later",
	"MIT", "MIT-0",
	"MPL-2.0",
	"NCSA",
	"PSF-2.0", "Python-2.0",
	"Unlicense",
	"UPL-1.0",
	"X11",
	"Zlib",
}

// GPLCompatibleLicenses returns the licence strings that do not taint a
// module P: the kernel's strings, then the SPDX identifiers. A licence
// is also accepted as an SPDX expression over these identifiers: "A OR B"
// is compatible if either side is, "A AND B" if both are, and
// "A WITH exception" if A is; "A+" means "A or later".
func GPLCompatibleLicenses() []string {
	return slices.Concat(kernelLicenses, spdxLicenses)
}

// GPLCompatible reports whether a module under licence is GPL-compatible.
// Anything else, including an empty or unparsable licence, is proprietary
// and taints the module P.
func GPLCompatible(license string) bool {
	if slices.Contains(kernelLicenses, license) {
		return true
	}
	toks := spdxTokens(license)
	if len(toks) == 0 {
		return false
	}
	p := spdxParser{toks: toks}
	ok, good := p.or()
	return good && p.pos == len(toks) && ok
}

func spdxTokens(s string) []string {
	var toks []string
	for _, f := range strings.Fields(s) {
		for f != "" {
			switch {
			case f[0] == '(' || f[0] == ')':
				toks = append(toks, f[:1])
				f = f[1:]
			default:
				i := strings.IndexAny(f, "()")
				if i < 0 {
					i = len(f)
				}
				toks = append(toks, f[:i])
				f = f[i:]
			}
		}
	}
	return toks
}

// spdxParser evaluates an SPDX licence expression (SPDX spec annex D):
// or := and {OR and}; and := with {AND with}; with := atom [WITH id];
// atom := id | "(" or ")".
type spdxParser struct {
	toks []string
	pos  int
}

func (p *spdxParser) peek(op string) bool {
	return p.pos < len(p.toks) && strings.EqualFold(p.toks[p.pos], op)
}

func (p *spdxParser) or() (ok, good bool) {
	ok, good = p.and()
	for good && p.peek("OR") {
		p.pos++
		r, g := p.and()
		ok, good = ok || r, g
	}
	return ok, good
}

func (p *spdxParser) and() (ok, good bool) {
	ok, good = p.with()
	for good && p.peek("AND") {
		p.pos++
		r, g := p.with()
		ok, good = ok && r, g
	}
	return ok, good
}

func (p *spdxParser) with() (ok, good bool) {
	ok, good = p.atom()
	if good && p.peek("WITH") {
		p.pos++
		if p.pos >= len(p.toks) || p.toks[p.pos] == "(" || p.toks[p.pos] == ")" {
			return false, false
		}
		p.pos++ // the exception only adds permissions
	}
	return ok, good
}

func (p *spdxParser) atom() (ok, good bool) {
	if p.pos >= len(p.toks) {
		return false, false
	}
	t := p.toks[p.pos]
	p.pos++
	switch {
	case t == "(":
		ok, good = p.or()
		if !good || p.pos >= len(p.toks) || p.toks[p.pos] != ")" {
			return false, false
		}
		p.pos++
		return ok, true
	case t == ")" || strings.EqualFold(t, "OR") || strings.EqualFold(t, "AND") || strings.EqualFold(t, "WITH"):
		return false, false
	}
	for _, id := range spdxLicenses {
		if strings.EqualFold(t, id) {
			return true, true
		}
	}
	// "GPL-2.0-only+" is nonsense, but "X+" of a listed X is "X or later".
	if base, plus := strings.CutSuffix(t, "+"); plus {
		for _, id := range spdxLicenses {
			if strings.EqualFold(base, id) {
				return true, true
			}
		}
	}
	return false, true
}
