// Package evctx defines the context fields that a session can record after
// every record's header, the CTF stream event context, as LTTng's
// add-context does: their names (used by the protocol, the CLI and the
// trace metadata) and their CTF types. The session writes them, the agent
// carries their names in the protocol, and the decoders read them.
package evctx

import (
	"errors"
	"fmt"

	"github.com/tracemark/tracemark/ctf"
)

// The context fields, by name.
const (
	PID      = "pid"      // int32: the process id, as the process sees it
	Procname = "procname" // string: the program name, NUL-terminated
	CPU      = "cpu"      // uint32: the shard (stream) that recorded the event
	VTID     = "vtid"     // uint32: the thread id, as the process sees it
	TID      = "tid"      // uint32: the thread id on the host (the process writes its own)
)

// ErrUnknown is wrapped by the errors of Fields for a name that is not a
// context field.
var ErrUnknown = errors.New("unknown context field")

// ErrDuplicate is wrapped by the errors of Fields for a name given twice.
var ErrDuplicate = errors.New("context field given twice")

// Field returns the CTF field of the context field name.
func Field(name string) (ctf.Field, error) {
	switch name {
	case PID:
		return ctf.Field{Name: name, Type: ctf.FieldType{Kind: ctf.Int, Bits: 32}}, nil
	case Procname:
		return ctf.Field{Name: name, Type: ctf.FieldType{Kind: ctf.String}}, nil
	case CPU, VTID, TID:
		return ctf.Field{Name: name, Type: ctf.FieldType{Kind: ctf.Uint, Bits: 32}}, nil
	}
	return ctf.Field{}, fmt.Errorf("%w %q (choose from pid, procname, cpu, vtid, tid)", ErrUnknown, name)
}

// Fields returns the CTF fields of names, in their order: the stream
// event context of records that carry them.
func Fields(names []string) ([]ctf.Field, error) {
	out := make([]ctf.Field, 0, len(names))
	for i, n := range names {
		f, err := Field(n)
		if err != nil {
			return nil, err
		}
		for _, o := range names[:i] {
			if o == n {
				return nil, fmt.Errorf("%w: %q", ErrDuplicate, n)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// IsThread reports whether name is a thread id (tid or vtid).
func IsThread(name string) bool { return name == TID || name == VTID }
