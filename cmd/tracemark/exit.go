package main

import (
	"errors"
	"fmt"

	"github.com/tracemark/tracemark/internal/wire"
)

// Exit codes, documented in the package comment and in "tracemark help".
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	// exitTargetDied: the traced process died while events were flowing.
	exitTargetDied = 3
)

// usageError is a mistake on the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// targetDiedError reports that the traced process died mid-stream.
type targetDiedError struct {
	pid  int
	kept string // what was kept, for the message
}

func (e *targetDiedError) Error() string {
	return fmt.Sprintf("process %d died during the recording; %s", e.pid, e.kept)
}

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var (
		usage *usageError
		died  *targetDiedError
	)
	switch {
	case errors.As(err, &usage):
		return exitUsage
	case errors.As(err, &died):
		return exitTargetDied
	case wire.IsCode(err, wire.CodeBadPattern), wire.IsCode(err, wire.CodeBadFilter),
		wire.IsCode(err, wire.CodeInvalid):
		// The agent refused a glob, filter or value from the command
		// line: as much a usage error as a malformed flag.
		return exitUsage
	}
	return exitError
}
