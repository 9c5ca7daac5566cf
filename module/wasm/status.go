package wasm

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tracemark/tracemark/module"
)

// Status is a loaded module as lsmod shows it. It is JSON-friendly.
type Status struct {
	Name          string `json:"name"`
	Version       string `json:"version,omitempty"`
	Description   string `json:"description,omitempty"`
	Author        string `json:"author,omitempty"`
	License       string `json:"license"`
	GPLCompatible bool   `json:"gpl_compatible"`
	// Signer describes the signature: "alice (ed25519:...)", "unsigned",
	// "unknown key ...", "bad signature: ...".
	Signer    string           `json:"signer"`
	Signature module.Signature `json:"signature"`
	Path      string           `json:"path,omitempty"`
	// Forced says why the ABI check failed, for a force-loaded module.
	Forced string       `json:"forced,omitempty"`
	Taint  module.Taint `json:"taint"`
	State  State        `json:"state"`
	// Policy is the policy that applies to the module (its own or the
	// host's).
	Policy module.Policy `json:"policy"`
	// Refused says why the module's markers are refused ("" if they are
	// used).
	Refused     string         `json:"refused,omitempty"`
	Markers     []MarkerStatus `json:"markers"`
	Counters    Stats          `json:"counters"`
	MemoryPages uint32         `json:"memory_pages"`
	// Instances is how many instances of the module are live (see
	// Limits.Instances).
	Instances int       `json:"instances"`
	Limits    Limits    `json:"limits"`
	LastError string    `json:"last_error,omitempty"`
	Loaded    time.Time `json:"loaded"`
}

// MarkerStatus is one marker of a module.
type MarkerStatus struct {
	Name    string `json:"name"`
	Format  string `json:"format"`
	Probes  int    `json:"probes"`
	Refused string `json:"refused,omitempty"`
}

// Status returns the module's status.
func (m *Module) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{
		Name:        m.name,
		Signer:      m.sig.String(),
		Signature:   m.sig,
		Path:        m.path,
		Forced:      m.forced,
		Taint:       m.taint,
		State:       m.state,
		Policy:      m.policy.Override(m.host.Policy()),
		Refused:     m.refusal,
		Markers:     []MarkerStatus{},
		MemoryPages: m.pool.pages(),
		Instances:   m.pool.count(),
		Limits:      m.limits,
		LastError:   m.lastErr,
		Loaded:      m.loaded,
		Counters:    m.counters(),
	}
	if i := m.info; i != nil {
		s.Version, s.Description, s.Author, s.License = i.Version, i.Description, i.Author, i.License
		s.GPLCompatible = i.GPLCompatible()
	}
	for _, sl := range m.markers {
		info := sl.d.Info()
		s.Markers = append(s.Markers, MarkerStatus{Name: info.Name(), Format: info.Format(), Probes: info.ProbeCount(), Refused: info.Refused()})
	}
	return s
}

// List is the status of the loaded modules.
type List []Status

// String renders the list as lsmod does: one row per module, its markers
// indented below it, and why they are refused if they are.
//
//	Module      Version  License      Signer    Taint  State  Events  Dropped  Errors
//	classifier  v1.0.0   Proprietary  unsigned  POE    live   12      0        0
//	  classifier:classified  category=%s score=%d
func (l List) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "Module\tVersion\tLicense\tSigner\tTaint\tState\tMarkers\tEvents\tDropped\tErrors")
	for _, s := range l {
		lic := s.License
		if lic == "" {
			lic = "(none)"
		}
		taint := s.Taint.String()
		if taint == "" {
			taint = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", s.Name, dash(s.Version), sanitize(lic), sanitize(s.Signer),
			taint, s.State, len(s.Markers), s.Counters.Delivered, s.Counters.Dropped, s.Counters.Errors)
	}
	w.Flush()
	for _, s := range l {
		if len(s.Markers) == 0 && s.Refused == "" {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", s.Name)
		for _, m := range s.Markers {
			fmt.Fprintf(&b, "  %s  %s\n", m.Name, m.Format)
		}
		if s.Refused != "" {
			fmt.Fprintf(&b, "  markers refused: %s\n", s.Refused)
		}
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return sanitize(s)
}
