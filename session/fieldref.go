package session

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tracemark/tracemark/internal/filterform"
	"github.com/tracemark/tracemark/marker"
)

// missingFields returns the variables that the filter names and that m
// has no field for, in the order of the expression: the fields of its
// checked form, or of its source if the program compiles CEL (nil for
// source that does not parse: compileFilter says what is wrong with it).
func missingFields(src string, form *filterform.Node, m *marker.Info) []string {
	var names []string
	switch sc := filterform.Sources(); {
	case form != nil:
		names = filterform.Fields(form)
	case sc != nil:
		return sc.MissingFields(src, m.Fields())
	}
	var out []string
	for _, name := range names {
		if m.FieldIndex(name) < 0 && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// LeftOutError says why a rule leaves a marker out: its filter names
// fields the marker lacks. It wraps marker.ErrLeftOut and the compile
// error, which wraps ErrFilter; [Rule.Refused] returns it.
type LeftOutError struct {
	Marker  string   // the marker left out
	Missing []string // the fields the filter names that the marker lacks
	Err     error    // the compile error
}

func (e *LeftOutError) Error() string {
	return fmt.Sprintf("%s left out: it has no field %s: %v", e.Marker, strings.Join(e.Missing, ", "), e.Err)
}

// Unwrap returns marker.ErrLeftOut and the compile error.
func (e *LeftOutError) Unwrap() []error { return []error{marker.ErrLeftOut, e.Err} }

// leaveOut turns err, the error of compiling a filter for m, into a
// *LeftOutError when m lacks a field that the filter names: a rule whose
// glob matches markers with different fields records those that have them
// and leaves the others out, rather than failing.
func leaveOut(err error, src string, form *filterform.Node, m *marker.Info) error {
	if err == nil {
		return nil
	}
	if missing := missingFields(src, form, m); len(missing) > 0 {
		return &LeftOutError{Marker: m.Name(), Missing: missing, Err: err}
	}
	return err
}
