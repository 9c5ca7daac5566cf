// Package bench measures tracemark beside peers that the main module does
// not depend on (zerolog), in one benchmark run so that ratios are
// meaningful on a noisy machine. It is its own Go module so that the
// peers stay out of the main module's go.mod; the standard-library peers
// (atomic.Bool, log/slog, runtime/trace) stay beside the benchmarks of
// marker and session.
//
//	cd bench && go test -run '^$' -bench . -benchmem -count 6
package bench
