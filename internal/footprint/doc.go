// Package footprint holds four small programs that scripts/footprint
// builds to measure what tracemark adds to a traced program's binary: a
// net/http and log/slog hello world (base), the same defining and firing a
// marker (withmarker), the same importing agent/autostart (withagent),
// and that exporting to OpenTelemetry from its environment as well
// (withotlp). Only the sizes matter; the programs are not run.
package footprint
