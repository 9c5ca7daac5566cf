package wire

import "time"

// Request limits. The agent enforces them on every request (package
// agent/internal/request), whose fuzz target checks that nothing beyond
// them is ever accepted.
const (
	// MaxRequestBytes bounds a request body.
	MaxRequestBytes = 64 << 10
	// MaxRules bounds the rules of one request.
	MaxRules = 64
	// MaxPatternLen bounds a marker glob.
	MaxPatternLen = 256
	// MaxFilterLen bounds a filter expression.
	MaxFilterLen = 4096
	// MaxNameLen bounds session names and client labels.
	MaxNameLen = 64
	// MinBuffer and MaxBuffer bound a session's buffer size per shard.
	MinBuffer = 16 << 10
	MaxBuffer = 64 << 20
	// DefaultBuffer is the buffer size per shard when none is given: with
	// the reader woken as sub-buffers fill, 4 MiB holds about 8 ms of
	// events of one goroutine firing a small event flat out (500 MB/s),
	// enough to ride out the reader's scheduling delays on a busy
	// machine.
	DefaultBuffer = 4 << 20
	// MinSubBuffer and MaxSubBuffer bound a recording's sub-buffer
	// (packet) size, a power of two; a buffer holds at least two.
	MinSubBuffer = 4 << 10
	MaxSubBuffer = 2 << 20
	// MaxDuration bounds a recording's duration.
	MaxDuration = 24 * time.Hour
	// MinInterval and MaxInterval bound flush and stats intervals.
	MinInterval = 10 * time.Millisecond
	MaxInterval = time.Hour
	// DefaultFlushInterval and DefaultStatsInterval are the intervals of
	// a recording when none are given.
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultStatsInterval = time.Second
)

// Trigger limits.
const (
	// DefaultTriggerEvery is a trigger's interval when none is given: at
	// most one snapshot per this long.
	DefaultTriggerEvery = 10 * time.Second
	// MinTriggerEvery is the shortest interval a trigger may ask for.
	MinTriggerEvery = 100 * time.Millisecond
)

// CheckSessionName validates a session name from a path: 1 to MaxNameLen
// characters among letters, digits, '-', '_' and '.', not starting with a
// dot.
func CheckSessionName(name string) error {
	if name == "" || len(name) > MaxNameLen || name[0] == '.' {
		return Errorf(CodeInvalid, "session name %q: want 1 to %d letters, digits, '-', '_' or '.', not starting with '.'", Clip(name), MaxNameLen)
	}
	for _, c := range []byte(name) {
		if !nameByte(c) {
			return Errorf(CodeInvalid, "session name %q: want 1 to %d letters, digits, '-', '_' or '.', not starting with '.'", Clip(name), MaxNameLen)
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// Clip shortens user input quoted in error messages.
func Clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
