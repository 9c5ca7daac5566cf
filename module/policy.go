package module

import (
	"errors"
	"fmt"
)

// Policy decides whether the markers of a module with a given taint are
// used: named after history so that operators can reason about them. See
// the package documentation for the table and for why [DefaultPolicy] is
// what it is.
type Policy uint8

const (
	// PolicyDefault is the zero Policy: for a process, [DefaultPolicy];
	// for a module, whatever the process uses.
	PolicyDefault Policy = iota
	// Strict is Linux 2.6.24: no markers from a module with any taint.
	Strict
	// Kernel is today's Linux tracepoint rule: only O and E are tolerated.
	Kernel
	// Proprietary is the 2008 proposal: P, O and E are tolerated; F, D
	// and L (and W, R, U) are refused.
	Proprietary
	// Open tolerates everything except a dead module (D).
	Open
)

// DefaultPolicy is the policy of a process that does not choose one.
//
// It is Proprietary, not the kernel's rule. The kernel refused markers of
// tainted modules because a module runs in the kernel's address space: a
// binary-only module can crash or corrupt everything, and its bug reports
// cannot be debugged. In the sandbox a module cannot touch host memory and
// every argument it passes is checked, so who wrote a module (P), where it
// came from (O) and who signed it (E) no longer say whether it can hurt the
// host. What it did still does: a module that was forced past the ABI
// check (F), died (D), broke the ABI (W) or overran its deadline (L) has
// shown that its events cannot be trusted, and Proprietary refuses them.
// The kernel rule would hide the markers of every third-party plugin, which
// is the use case modules exist for.
const DefaultPolicy = Proprietary

var policyNames = [...]string{PolicyDefault: "default", Strict: "strict", Kernel: "kernel", Proprietary: "proprietary", Open: "open"}

// String returns the policy's name: "strict", "kernel", "proprietary",
// "open", or "default".
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("policy(%d)", p)
}

// ParsePolicy parses a policy name as String returns it.
func ParsePolicy(s string) (Policy, error) {
	for i, n := range policyNames {
		if s == n {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("module: unknown policy %q (want strict, kernel, proprietary or open)", s)
}

// MarshalText encodes the policy's name.
func (p Policy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (p *Policy) UnmarshalText(b []byte) error {
	v, err := ParsePolicy(string(b))
	*p = v
	return err
}

// Resolve returns p, or DefaultPolicy for PolicyDefault.
func (p Policy) Resolve() Policy {
	if p == PolicyDefault {
		return DefaultPolicy
	}
	return p
}

// Override returns the policy that applies to a module whose own policy
// is p in a process whose policy is process: p if set, else process.
func (p Policy) Override(process Policy) Policy {
	if p != PolicyDefault {
		return p
	}
	return process.Resolve()
}

// Tolerated returns the taint flags under which a module's markers are
// still used.
func (p Policy) Tolerated() Taint {
	switch p.Resolve() {
	case Strict:
		return 0
	case Kernel:
		return TaintOutOfTree | TaintUnsigned
	case Proprietary:
		return TaintProprietary | TaintOutOfTree | TaintUnsigned
	case Open:
		return AllTaints &^ TaintDied
	}
	return 0
}

// ErrRefused is wrapped by the errors of Policy.Check.
var ErrRefused = errors.New("refused by policy")

// RefusedError says which taint flags a policy does not tolerate.
type RefusedError struct {
	Policy  Policy
	Taint   Taint // the module's whole taint
	Refused Taint // the flags the policy does not tolerate
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("policy %q refuses taint %s (%s)", e.Policy.Resolve(), e.Refused, e.Refused.Flags()[0].Meaning())
}

// Unwrap lets errors.Is match ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// Check returns nil if the policy uses the markers of a module tainted t,
// or a *RefusedError.
func (p Policy) Check(t Taint) error {
	if bad := t &^ p.Tolerated(); bad != 0 {
		return &RefusedError{Policy: p.Resolve(), Taint: t, Refused: bad}
	}
	return nil
}
