package filterform

import (
	"sync"

	"github.com/tracemark/tracemark/marker"
)

// Verdict is a filter's answer for an event.
type Verdict uint8

const (
	// Rejected: the filter is false for the event, or failed.
	Rejected Verdict = iota
	// Accepted: the filter is true for the event.
	Accepted
	// OverCost: a CEL program reached its run-time cost limit and was
	// stopped, so the event is dropped (and counted as such).
	OverCost
)

// Source is a filter compiled from CEL source in the process, by a
// program that opted in to CEL (package session/celfilter).
type Source struct {
	// Form is the checked form of the expression, or nil if the agent's
	// evaluator cannot run it; then Eval runs the CEL program.
	Form *Node
	// Eval evaluates the CEL program. It allocates.
	Eval func(e *marker.Event) Verdict
	// Cost is the filter's static cost bound, in units: the form's if
	// there is one, else CEL's estimate with the program's overhead.
	Cost uint64
}

// SourceCompiler compiles CEL source, for programs that link CEL.
type SourceCompiler struct {
	// Compile type-checks src against a marker's fields and refuses it
	// (with ErrFilterCost) if its cost bound exceeds the budget; runCost,
	// if not 0, overrides the run-time cost limit of the CEL program.
	Compile func(src, marker string, fields []marker.FieldInfo, maxString int, runCost uint64) (*Source, error)
	// MissingFields returns the variables of src that are not among
	// fields, or nil if src does not parse.
	MissingFields func(src string, fields []marker.FieldInfo) []string
}

var (
	sourceMu sync.Mutex
	source   *SourceCompiler
)

// RegisterSource installs the CEL compiler; package session/celfilter
// calls it when a program imports it.
func RegisterSource(c *SourceCompiler) {
	sourceMu.Lock()
	defer sourceMu.Unlock()
	source = c
}

// Sources returns the CEL compiler, or nil if the program did not link
// one.
func Sources() *SourceCompiler {
	sourceMu.Lock()
	defer sourceMu.Unlock()
	return source
}
