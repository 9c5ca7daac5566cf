package module

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracemark/tracemark/marker"
)

// Taint is a set of taint flags, each shown as one letter with the Linux
// kernel's meaning. A module carries the flags of what it is (licence,
// origin, signature, forced load) and of what it did (died, misbehaved,
// overran); the process carries the union of every module's flags, ever.
type Taint uint16

// The taint flags, in the kernel's bit order (which is also the order of
// their letters in [Taint.String]).
const (
	// P: a proprietary module was loaded (licence not GPL-compatible, or none).
	TaintProprietary Taint = 1 << iota
	// F: a module was force-loaded past a failed ABI check.
	TaintForced
	// R: a module was force-unloaded while in use or busy.
	TaintForceUnloaded
	// U: taint set by the user (an operator marked a module or the process).
	TaintUser
	// D: a module died: it trapped or exited during a call.
	TaintDied
	// W: a warning: a module broke the ABI (garbage arguments, unknown
	// marker, bad pointers) or a probe panicked.
	TaintWarning
	// O: an out-of-tree module was loaded (not from the trusted directory).
	TaintOutOfTree
	// E: an unsigned module, or one signed by a key the host does not
	// trust, or with a bad signature, was loaded.
	TaintUnsigned
	// L: a module call overran its CPU deadline and the module was killed
	// (the kernel's soft lockup).
	TaintOverran

	// AllTaints is every flag.
	AllTaints = TaintProprietary | TaintForced | TaintForceUnloaded | TaintUser |
		TaintDied | TaintWarning | TaintOutOfTree | TaintUnsigned | TaintOverran
)

type flagInfo struct {
	flag    Taint
	letter  byte
	meaning string
}

var flagTable = [...]flagInfo{
	{TaintProprietary, 'P', "proprietary module loaded: its licence is not GPL-compatible, or it declares none"},
	{TaintForced, 'F', "module force-loaded: its ABI check failed and was overridden"},
	{TaintForceUnloaded, 'R', "module force-unloaded while it was in use or busy"},
	{TaintUser, 'U', "taint set by the user"},
	{TaintDied, 'D', "a module died: it trapped or exited during a call and was stopped"},
	{TaintWarning, 'W', "warning: a module broke the ABI (bad arguments, pointers or markers) or a probe panicked"},
	{TaintOutOfTree, 'O', "out-of-tree module loaded: not from the host's trusted module directory"},
	{TaintUnsigned, 'E', "unsigned module loaded, or signed by a key the host does not trust, or with a bad signature"},
	{TaintOverran, 'L', "a module call overran its CPU deadline and the module was killed"},
}

// String returns the letters of the flags in t in kernel order, such as
// "POE", or "" when t is empty.
func (t Taint) String() string {
	var b [len(flagTable)]byte
	n := 0
	for _, f := range flagTable {
		if t&f.flag != 0 {
			b[n] = f.letter
			n++
		}
	}
	return string(b[:n])
}

// Flags returns the single flags set in t, in kernel order.
func (t Taint) Flags() []Taint {
	var out []Taint
	for _, f := range flagTable {
		if t&f.flag != 0 {
			out = append(out, f.flag)
		}
	}
	return out
}

// Letter returns the letter of a single flag, or '?' if t is not exactly
// one flag.
func (t Taint) Letter() byte {
	for _, f := range flagTable {
		if t == f.flag {
			return f.letter
		}
	}
	return '?'
}

// Meaning returns the one-line explanation of a single flag, as
// `tracemark taint` prints it.
func (t Taint) Meaning() string {
	for _, f := range flagTable {
		if t == f.flag {
			return f.meaning
		}
	}
	return "unknown taint " + t.String()
}

// ParseTaint parses letters such as "POE" (in any order; "" and "-" are no
// taint).
func ParseTaint(s string) (Taint, error) {
	var t Taint
	if s == "-" {
		return 0, nil
	}
	for i := 0; i < len(s); i++ {
		found := false
		for _, f := range flagTable {
			if s[i] == f.letter {
				t |= f.flag
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("module: unknown taint letter %q", s[i])
		}
	}
	return t, nil
}

// MarshalText encodes the letters, so that JSON shows "POE".
func (t Taint) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (t *Taint) UnmarshalText(b []byte) error {
	v, err := ParseTaint(string(b))
	*t = v
	return err
}

// TaintRecord says when and why a flag was first set on the process by one
// module (or by the user, Module "").
type TaintRecord struct {
	Flag   Taint     `json:"flag"`
	Module string    `json:"module,omitempty"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// maxTaintLog bounds the process taint log. Records are kept per (flag,
// module) pair, so it only fills with more than a hundred distinct modules
// misbehaving; later ones are counted but not recorded.
const maxTaintLog = 1024

var process struct {
	taint   atomic.Uint32
	mu      sync.Mutex
	log     []TaintRecord
	dropped int
}

// AddTaint taints the process with flags, on behalf of module (empty for
// the user or the host), and records why. Process taint is sticky: nothing
// ever clears it, not even unloading the module that caused it.
func AddTaint(flags Taint, module, reason string) {
	flags &= AllTaints
	if flags == 0 {
		return
	}
	for {
		old := process.taint.Load()
		if process.taint.CompareAndSwap(old, old|uint32(flags)) {
			break
		}
	}
	now := time.Now()
	process.mu.Lock()
	defer process.mu.Unlock()
next:
	for _, f := range flags.Flags() {
		for _, r := range process.log {
			if r.Flag == f && r.Module == module {
				continue next
			}
		}
		if len(process.log) >= maxTaintLog {
			process.dropped++
			continue
		}
		process.log = append(process.log, TaintRecord{Flag: f, Module: module, Reason: reason, Time: now})
	}
}

// Tainted returns the process taint: every flag any module ever brought,
// plus W if a probe ever panicked (see [marker.FaultCount]).
func Tainted() Taint {
	t := Taint(process.taint.Load())
	if marker.FaultCount() > 0 {
		t |= TaintWarning
	}
	return t
}

// TaintLog returns the records of why the process is tainted, oldest first.
func TaintLog() []TaintRecord {
	process.mu.Lock()
	defer process.mu.Unlock()
	return append([]TaintRecord(nil), process.log...)
}

// TaintReport is the process taint explained, letter by letter: what
// `tracemark taint` prints.
type TaintReport struct {
	Taint Taint        `json:"taint"`
	Flags []FlagReport `json:"flags"`
}

// FlagReport explains one flag of a TaintReport.
type FlagReport struct {
	Letter  string        `json:"letter"`
	Meaning string        `json:"meaning"`
	Records []TaintRecord `json:"records,omitempty"`
}

// Report explains the process taint.
func Report() TaintReport {
	t := Tainted()
	log := TaintLog()
	r := TaintReport{Taint: t, Flags: []FlagReport{}}
	for _, f := range t.Flags() {
		fr := FlagReport{Letter: string(f.Letter()), Meaning: f.Meaning()}
		for _, rec := range log {
			if rec.Flag == f {
				fr.Records = append(fr.Records, rec)
			}
		}
		if f == TaintWarning && marker.FaultCount() > 0 {
			for _, pf := range marker.RecentFaults() {
				fr.Records = append(fr.Records, TaintRecord{Flag: f, Reason: "probe of " + pf.Marker + " panicked: " + fmt.Sprint(pf.Value), Time: pf.Time})
			}
		}
		r.Flags = append(r.Flags, fr)
	}
	return r
}

// String renders the report like the kernel's "Tainted:" line followed by
// one line per flag:
//
//	Tainted: POE
//	  P  proprietary module loaded: ... (classifier: licence "Proprietary")
func (r TaintReport) String() string {
	var b strings.Builder
	if r.Taint == 0 {
		b.WriteString("Not tainted\n")
		return b.String()
	}
	fmt.Fprintf(&b, "Tainted: %s\n", r.Taint)
	for _, f := range r.Flags {
		fmt.Fprintf(&b, "  %s  %s\n", f.Letter, f.Meaning)
		for _, rec := range f.Records {
			who := rec.Module
			if who == "" {
				who = "-"
			}
			fmt.Fprintf(&b, "       %s %s: %s\n", rec.Time.Format(time.DateTime), who, rec.Reason)
		}
	}
	return b.String()
}
