// Package footprint holds three small programs that scripts/footprint
// builds to measure what tracemark adds to a traced program's binary: a
// net/http and log/slog hello world (base), the same defining and firing a
// marker (withmarker), and the same importing agent/autostart
// (withagent). Only the sizes matter; the programs are not run.
package footprint
