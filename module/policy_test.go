package module

import (
	"errors"
	"testing"
)

// The policy table of the package documentation, flag by flag.
func TestPolicyTable(t *testing.T) {
	tolerated := map[Policy]string{
		Strict:        "",
		Kernel:        "OE",
		Proprietary:   "POE",
		Open:          "PFRUWOEL",
		PolicyDefault: "POE",
	}
	for p, want := range tolerated {
		if got := p.Tolerated().String(); got != want {
			t.Errorf("%v tolerates %q, want %q", p, got, want)
		}
		for _, f := range AllTaints.Flags() {
			err := p.Check(f)
			ok := err == nil
			if ok != (want != "" && containsLetter(want, f.Letter())) {
				t.Errorf("%v.Check(%s) = %v", p, f, err)
			}
			if err != nil {
				var re *RefusedError
				if !errors.Is(err, ErrRefused) || !errors.As(err, &re) || re.Refused != f || re.Policy != p.Resolve() {
					t.Errorf("%v.Check(%s): %#v", p, f, err)
				}
			}
		}
	}
	if err := Strict.Check(0); err != nil {
		t.Errorf("strict refuses an untainted module: %v", err)
	}
	err := Kernel.Check(TaintProprietary | TaintDied | TaintOutOfTree)
	if err == nil || err.Error() != `policy "kernel" refuses taint PD (proprietary module loaded: its licence is not GPL-compatible, or it declares none)` {
		t.Errorf("error %v", err)
	}
}

func containsLetter(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

func TestPolicyNames(t *testing.T) {
	for _, p := range []Policy{PolicyDefault, Strict, Kernel, Proprietary, Open} {
		got, err := ParsePolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p, got, err)
		}
		b, _ := p.MarshalText()
		var q Policy
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("text round trip of %v: %v %v", p, q, err)
		}
	}
	if _, err := ParsePolicy("lenient"); err == nil {
		t.Error("ParsePolicy accepted lenient")
	}
	if DefaultPolicy != Proprietary || PolicyDefault.Resolve() != Proprietary {
		t.Error("default policy")
	}
	if Open.Override(Strict) != Open || PolicyDefault.Override(Kernel) != Kernel || PolicyDefault.Override(PolicyDefault) != DefaultPolicy {
		t.Error("Override")
	}
}
