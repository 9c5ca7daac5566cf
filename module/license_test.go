package module

import "testing"

func TestGPLCompatible(t *testing.T) {
	tests := []struct {
		license string
		want    bool
	}{
		// The kernel's strings, exactly.
		{"GPL", true},
		{"GPL v2", true},
		{"GPL and additional rights", true},
		{"Dual BSD/GPL", true},
		{"Dual MIT/GPL", true},
		{"Dual MPL/GPL", true},
		{"gpl", false}, // the kernel compares exactly
		{"GPL v3", false},
		// SPDX identifiers, case-insensitive.
		{"GPL-2.0-only", true},
		{"GPL-2.0-or-later", true},
		{"gpl-3.0-or-later", true},
		{"LGPL-2.1+", true},
		{"MIT", true},
		{"Apache-2.0", true},
		{"BSD-3-Clause", true},
		{"MPL-2.0", true},
		{"0BSD", true},
		// Expressions.
		{"MIT OR Apache-2.0", true},
		{"Proprietary OR MIT", true},
		{"MIT AND Proprietary", false},
		{"(MIT OR BUSL-1.1) AND Apache-2.0", true},
		{"GPL-2.0-only WITH Linux-syscall-note", true},
		{"GPL-2.0-or-later WITH Classpath-exception-2.0 OR MIT", true},
		{"BUSL-1.1 WITH Foo", false},
		// Proprietary.
		{"", false},
		{"Proprietary", false},
		{"BUSL-1.1", false},
		{"SSPL-1.0", false},
		{"CC-BY-NC-4.0", false},
		{"MIT OR", false},
		{"(MIT", false},
		{"MIT)", false},
		{"MIT WITH", false},
		{"AND MIT", false},
		{"MIT Apache-2.0", false},
	}
	for _, tt := range tests {
		if got := GPLCompatible(tt.license); got != tt.want {
			t.Errorf("GPLCompatible(%q) = %v, want %v", tt.license, got, tt.want)
		}
	}
	if n := len(GPLCompatibleLicenses()); n != len(kernelLicenses)+len(spdxLicenses) {
		t.Errorf("%d licences listed", n)
	}
	for _, l := range GPLCompatibleLicenses() {
		if !GPLCompatible(l) {
			t.Errorf("listed licence %q is not compatible", l)
		}
	}
}
