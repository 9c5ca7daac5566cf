package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// otlpGzip makes -path otlp compress its exports.
var otlpGzip bool

// otlpNoOutput makes -path otlp record with --no-output: no trace.
var otlpNoOutput bool

// summaryEvents and summaryLost read tracemark record's summary, the
// counts when there is no trace to read.
var (
	summaryEvents = regexp.MustCompile(`(?m)^Recorded (\d+) events`)
	summaryLost   = regexp.MustCompile(`(?m)^Lost events: (\d+|none)`)
)

// exportLine is the line tracemark record --otlp ends with: what it
// exported, and what it lost (dropped: the queue was full; rejected;
// unsent at exit).
var exportLine = regexp.MustCompile(`OTLP: (\d+) of (\d+) events exported to [^;\s]+(?:; lost (\d+) \((\d+) dropped: queue full, (\d+) rejected by the collector, (\d+) unsent at exit\))?`)

// runOTLP is -path otlp: tracemark record --otlp to a receiver that
// counts the log records it receives, in a process of its own (as a
// collector is) unless -receiver inproc.
func runOTLP(dir string, d time.Duration, goroutines int, rate float64, buffer, tracemark, label string) error {
	recv, err := startReceiver(otlpReceiverInProc)
	if err != nil {
		return err
	}
	defer recv.stop()
	var env []string
	if otlpGzip {
		env = []string{"OTEL_EXPORTER_OTLP_COMPRESSION=gzip"}
	}
	var out bytes.Buffer
	cpu0 := selfCPU()
	fired, cmd, err := recordTo(&out, env, dir, d, goroutines, rate, buffer, tracemark, "--otlp", recv.url)
	if err != nil {
		return err
	}
	procCPU := selfCPU() - cpu0
	counts, recvCPU, err := recv.counts()
	if err != nil {
		return err
	}
	cliCPU := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	m := exportLine.FindStringSubmatch(out.String())
	if m == nil {
		return fmt.Errorf("tracemark record --otlp printed no export line:\n%s", out.String())
	}
	num := func(s string) uint64 { n, _ := strconv.ParseUint(s, 10, 64); return n }
	exported, given, lostExp := num(m[1]), num(m[2]), num(m[3])
	dropped := num(m[4])
	var events, ringLost uint64
	if otlpNoOutput {
		me, ml := summaryEvents.FindStringSubmatch(out.String()), summaryLost.FindStringSubmatch(out.String())
		if me == nil || ml == nil {
			return fmt.Errorf("tracemark record --no-output printed no summary counts:\n%s", out.String())
		}
		events, ringLost = num(me[1]), num(ml[1]) // "none" reads as 0
	} else if events, ringLost, err = countTrace(dir); err != nil {
		return err
	}
	received := counts.Logs
	pace := "max"
	if rate > 0 {
		pace = fmt.Sprintf("%.1fM/s", rate/1e6)
	}
	comp := "none"
	if otlpGzip {
		comp = "gzip"
	}
	secs := d.Seconds()
	fmt.Printf("%-10s path=otlp   goroutines=%d pace=%-7s buffer=%-4s comp=%s fired %6.2f M/s  received %6.2f M/s  exporter dropped %d  buffers lost %d  lost %6.3f %%  (%d fired = %d received + %d dropped + %d lost: %s; %d malformed requests; process CPU %.2fs, receiver CPU %.2fs, tracemark CPU %.2fs = %.1f ns/event received)\n",
		label, goroutines, pace, orDefault(buffer), comp, float64(fired)/secs/1e6, float64(received)/secs/1e6, lostExp, ringLost,
		100*float64(lostExp+ringLost)/float64(max(fired, 1)), fired, received, lostExp, ringLost, exact(fired, received+lostExp+ringLost),
		counts.Malformed, procCPU.Seconds(), recvCPU.Seconds(), cliCPU.Seconds(), float64(cliCPU)/float64(max(received, 1)))
	switch {
	case given != events:
		return fmt.Errorf("the exporter was given %d events, the trace (or summary) holds %d", given, events)
	case exported != received:
		return fmt.Errorf("the exporter says it exported %d events, the receiver counted %d", exported, received)
	case fired != received+lostExp+ringLost:
		return fmt.Errorf("%d fired, but %d received + %d dropped by the exporter + %d lost in the buffers; tracemark said:\n%s", fired, received, lostExp, ringLost, out.String())
	case dropped != lostExp:
		return fmt.Errorf("the exporter lost %d events other than to a full queue: %s", lostExp-dropped, m[0])
	}
	return nil
}
