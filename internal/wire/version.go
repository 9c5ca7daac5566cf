package wire

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Revision is the revision of protocol [Version]: it counts the changes
// within /v1 that older clients cannot read, which a client and an agent
// check for each other ([CheckAgent], [CheckClient]). Additions that old
// clients can ignore keep the revision.
//
//   - 0 (unnumbered): records of truncated events have the event's class
//     id and end with the truncation bitmask, on every record of classes
//     that may truncate.
//   - 1: records of truncated events have their own class id, the class's
//     [EventClass.TruncatedID] (bit 15 set), which a revision 0 client
//     does not know.
//   - 2: the records of a session that records context fields (process
//     id, program name, shard, thread ids) carry them after their header
//     ([Hello.Context]), which a revision 1 client would take for fields
//     (a snapshot of a named session another client enabled with a
//     context).
const Revision = 2

// HeaderProtocol is the request header in which a client says which
// protocol it speaks, "VERSION.REVISION" ([ProtocolString]). The agent
// refuses clients of an older revision, except for GET /v1/info, and
// serves requests without the header (curl, and clients older than the
// header) as the current revision.
const HeaderProtocol = "Tracemark-Protocol"

// CodeProtocol: the client speaks an older revision of the protocol than
// the agent, and would misread its answers.
const CodeProtocol = "protocol_mismatch"

// ErrProtocol is wrapped by the errors of [CheckAgent]: the agent speaks
// a newer protocol than this client reads.
var ErrProtocol = errors.New("protocol mismatch")

// ProtocolString formats a protocol version and revision, as "1.2".
func ProtocolString(version, revision int) string {
	return strconv.Itoa(version) + "." + strconv.Itoa(revision)
}

// newer reports whether version.revision a comes after b.
func newer(av, ar, bv, br int) bool { return av > bv || av == bv && ar > br }

// CheckAgent returns an error wrapping [ErrProtocol] if an agent that
// speaks version.revision (from its [Info] or [Hello]) is newer than this
// client, which would misread what it sends.
func CheckAgent(pid, version, revision int) error {
	if !newer(version, revision, Version, Revision) {
		return nil
	}
	return fmt.Errorf("%w: process %d speaks tracemark protocol %s, this tracemark command speaks %s and would misread it: upgrade tracemark to the version the program was built with",
		ErrProtocol, pid, ProtocolString(version, revision), ProtocolString(Version, Revision))
}

// CheckClient checks a request's [HeaderProtocol] for the agent: nil if
// the header is absent or not older than this agent's protocol, an
// *Error with [CodeProtocol] (status 400) if it is older, one with
// [CodeBadRequest] if it is malformed.
func CheckClient(h http.Header) error {
	v := h.Get(HeaderProtocol)
	if v == "" {
		return nil
	}
	major, minor, ok := strings.Cut(v, ".")
	cv, err1 := strconv.Atoi(major)
	cr, err2 := strconv.Atoi(minor)
	if !ok || err1 != nil || err2 != nil || cv < 0 || cr < 0 {
		return Errorf(CodeBadRequest, "%s header %q: want VERSION.REVISION, such as %s", HeaderProtocol, v, ProtocolString(Version, Revision))
	}
	if newer(Version, Revision, cv, cr) {
		return &Error{Status: http.StatusBadRequest, Code: CodeProtocol, Message: fmt.Sprintf(
			"this process speaks tracemark protocol %s, the client speaks %s and would misread it: upgrade tracemark",
			ProtocolString(Version, Revision), ProtocolString(cv, cr))}
	}
	return nil
}
