// Package footprint holds four small programs that scripts/footprint
// builds to measure what tracemark adds to a traced program's binary: a
// net/http and log/slog hello world (base), the same defining and firing a
// marker (withmarker), the same importing agent/autostart (withagent),
// and that exporting to OpenTelemetry from its environment as well
// (withotlp). Only the sizes matter; the programs are not run.
//
// Its test checks the dependency rules that keep those sizes down and the
// layers apart: agent and agent/autostart link no wazero (module support
// is agent/agentmodules), the tracemark command links no example and no
// module builder, and, once filters no longer need CEL in the traced
// program, agent/autostart links no CEL.
package footprint
