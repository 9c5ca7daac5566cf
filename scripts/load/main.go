// Command load measures what reaches the disk: it fires a 3-field marker
// (int32, int64, "hello") for a fixed time, as fast as it can or paced,
// records it either in process (session.CreateTrace and Run) or through
// the agent and `tracemark record` over the unix socket, then reads the
// trace back and reports the events recorded per second and the share
// lost. Fired events must equal recorded plus lost exactly; the program
// says so or fails.
//
//	go run ./scripts/load -path inproc -duration 3s
//	go build -o /tmp/tracemark ./cmd/tracemark
//	go run ./scripts/load -path record -tracemark /tmp/tracemark -duration 3s
//	go run ./scripts/load -path record -tracemark /tmp/tracemark -rate 9000000
//	go run ./scripts/load -path otlp -tracemark /tmp/tracemark -rate 2000000
//
// With -path otlp, `tracemark record --otlp` also exports every event to
// an OTLP/HTTP receiver, which counts the log records it decodes, in a
// process of its own as a collector is (-receiver inproc: in this one);
// the program reports the events received per second and what
// the exporter dropped (its queue full: the CLI could not keep up), and
// checks that fired = received + dropped + lost in the process's buffers.
// TRACEMARK_CPUPROFILE=FILE, which tracemark inherits, writes a CPU
// profile of the CLI.
//
// With -path otlp -no-output, tracemark record writes no trace: the
// events it received and those the process lost are then taken from its
// summary ("Recorded N events", "Lost events: N").
//
// With -rate, the firing goroutines sleep between bursts (see paceSlack):
// the traced program then takes the CPU its events cost, not a core.
//
// It uses only long-standing APIs, so that the same source can be built
// against an older tree to measure the old behaviour in the same run.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tracemark/tracemark/agent"
	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

var ev = marker.Define3("load:event", marker.Int32("i"), marker.Int64("v"), marker.String("s"))

func main() {
	if len(os.Args) == 2 && os.Args[1] == serveReceiverFlag {
		if err := serveReceiver(); err != nil {
			fmt.Fprintln(os.Stderr, "load: receiver:", err)
			os.Exit(1)
		}
		return
	}
	path := flag.String("path", "inproc", "inproc (session.CreateTrace + Run), record (agent + tracemark record) or otlp (agent + tracemark record --otlp to a counting receiver)")
	gz := flag.Bool("gzip", false, "otlp: compress the exports (OTEL_EXPORTER_OTLP_COMPRESSION=gzip)")
	receiverAt := flag.String("receiver", "process", "otlp: where the receiver runs: process (its own, as a collector) or inproc (this one's)")
	noOut := flag.Bool("no-output", false, "otlp: record with --no-output (no trace; counts from tracemark's summary)")
	producer := flag.String("producer", "agent", "record, otlp: agent (this program fires, its agent streams) or replay (an agent replays one recorded packet at -rate: tracemark record alone is measured)")
	duration := flag.Duration("duration", 3*time.Second, "how long to fire")
	goroutines := flag.Int("goroutines", 1, "goroutines firing")
	rate := flag.Float64("rate", 0, "events per second in all, paced (0: as fast as possible)")
	buffer := flag.String("buffer", "", "buffer size per shard, such as 1M (default: the path's default)")
	interval := flag.Duration("interval", 10*time.Millisecond, "inproc: Run's interval")
	tracemark := flag.String("tracemark", "tracemark", "record: the tracemark binary")
	dir := flag.String("o", "", "trace directory (default: a new one under the temporary directory, removed after)")
	label := flag.String("label", "", "label printed with the result")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the firing and recording here")
	schedLat := flag.Bool("schedlat", false, "also print how long goroutines waited for a P once runnable (runtime/metrics /sched/latencies) while firing: the woken reader, and writers that yielded")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	showSchedLat = *schedLat
	otlpGzip = *gz
	otlpNoOutput = *noOut
	switch *receiverAt {
	case "process":
	case "inproc":
		otlpReceiverInProc = true
	default:
		fmt.Fprintf(os.Stderr, "load: unknown -receiver %q: process or inproc\n", *receiverAt)
		os.Exit(2)
	}
	if otlpNoOutput && *path != "otlp" {
		fmt.Fprintln(os.Stderr, "load: -no-output is for -path otlp: tracemark record needs --otlp with it")
		os.Exit(2)
	}
	switch *producer {
	case "agent":
	case "replay":
		replayProducer = true
		if *path == "inproc" || *rate <= 0 || *goroutines != 1 || *buffer != "" {
			fmt.Fprintln(os.Stderr, "load: -producer replay is for -path record or otlp, with -rate, one goroutine and the default buffer")
			os.Exit(2)
		}
	default:
		fmt.Fprintf(os.Stderr, "load: unknown -producer %q: agent or replay\n", *producer)
		os.Exit(2)
	}
	if err := run(*path, *duration, *goroutines, *rate, *buffer, *interval, *tracemark, *dir, *label); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(path string, d time.Duration, goroutines int, rate float64, buffer string, interval time.Duration, tracemark, dir, label string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "load-trace")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = filepath.Join(tmp, "trace")
	}
	var fired uint64
	var cliCPU time.Duration // tracemark record's CPU time
	var err error
	cpu0 := selfCPU()
	switch path {
	case "inproc":
		fired, err = inproc(dir, d, goroutines, rate, buffer, interval)
	case "record":
		fired, cliCPU, err = record(dir, d, goroutines, rate, buffer, tracemark)
	case "otlp":
		return runOTLP(dir, d, goroutines, rate, buffer, tracemark, label)
	default:
		err = fmt.Errorf("unknown -path %q", path)
	}
	if err != nil {
		return err
	}
	procCPU := selfCPU() - cpu0
	events, lost, err := countTrace(dir)
	if err != nil {
		return err
	}
	pace := "max"
	if rate > 0 {
		pace = fmt.Sprintf("%.1fM/s", rate/1e6)
	}
	secs := d.Seconds()
	cpu := fmt.Sprintf("process CPU %.2fs", procCPU.Seconds())
	if path == "record" {
		cpu += fmt.Sprintf(", tracemark CPU %.2fs = %.1f ns/event recorded", cliCPU.Seconds(), float64(cliCPU)/float64(max(events, 1)))
	}
	fmt.Printf("%-10s path=%-6s goroutines=%d pace=%-7s buffer=%-4s fired %6.2f M/s  recorded %6.2f M/s  lost %6.3f %%  (%d fired = %d recorded + %d lost: %s; %s)\n",
		label, path, goroutines, pace, orDefault(buffer), float64(fired)/secs/1e6, float64(events)/secs/1e6,
		100*float64(lost)/float64(max(fired, 1)), fired, events, lost, exact(fired, events+lost), cpu)
	if fired != events+lost {
		return fmt.Errorf("the trace accounts for %d events, %d were fired", events+lost, fired)
	}
	return nil
}

func orDefault(s string) string {
	if s == "" {
		return "def"
	}
	return s
}

func exact(a, b uint64) string {
	if a == b {
		return "exact"
	}
	return "MISMATCH"
}

// showSchedLat makes fire print the scheduling latencies of its run.
var showSchedLat bool

// schedLatencies reads the runtime's histogram of the time goroutines
// spent runnable before running.
func schedLatencies() *metrics.Float64Histogram {
	sample := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return sample[0].Value.Float64Histogram()
}

// printSchedLat prints quantiles of the latencies between two readings.
func printSchedLat(before, after *metrics.Float64Histogram) {
	if before == nil || after == nil {
		return
	}
	counts := make([]uint64, len(after.Counts))
	var total uint64
	for i := range counts {
		counts[i] = after.Counts[i] - before.Counts[i]
		total += counts[i]
	}
	if total == 0 {
		return
	}
	q := func(f float64) string {
		want := uint64(f * float64(total))
		var n uint64
		for i, c := range counts {
			n += c
			if n > want || (n == total && c > 0) {
				if b := after.Buckets[i+1]; !math.IsInf(b, 1) {
					return time.Duration(b * 1e9).String()
				}
				return "inf"
			}
		}
		return "?"
	}
	fmt.Printf("scheduling latency while firing: %d waits, median < %s, 99%% < %s, 99.9%% < %s, max < %s\n",
		total, q(0.5), q(0.99), q(0.999), q(1))
}

// paceSlack is how far ahead of its rate a paced goroutine fires before
// it sleeps: long enough that sleeping costs little (about a thousand
// wake-ups a second), short enough that a burst (9,000 events at 9 M/s)
// fits in a sub-buffer or two.
const paceSlack = time.Millisecond

// fire runs goroutines firing for d, paced at rate events per second in
// all if rate > 0, and returns how many events they fired.
func fire(d time.Duration, goroutines int, rate float64) uint64 {
	if showSchedLat {
		before := schedLatencies()
		defer func() { printSchedLat(before, schedLatencies()) }()
	}
	var wg sync.WaitGroup
	counts := make([]uint64, goroutines)
	start := time.Now()
	end := start.Add(d)
	perG := rate / float64(goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := uint64(0)
			for {
				for range 256 {
					ev.Fire(int32(n), int64(g), "hello")
					n++
				}
				now := time.Now()
				if !now.Before(end) {
					break
				}
				if perG > 0 {
					// Paced: sleep, never spin. A goroutine that spun
					// until each batch was due took a whole core at
					// any rate (on two cores, half the machine the
					// CLI needs), which a real service firing that
					// often does not. It fires flat out until it is
					// paceSlack ahead of the rate, then sleeps until
					// due: bursts of at most paceSlack's events,
					// which the buffers absorb, and the average rate
					// exact, since due counts from the start.
					due := start.Add(time.Duration(float64(n) / perG * 1e9))
					if ahead := due.Sub(now); ahead > paceSlack {
						time.Sleep(ahead)
					}
				}
			}
			counts[g] = n
		}()
	}
	wg.Wait()
	var total uint64
	for _, n := range counts {
		total += n
	}
	return total
}

func inproc(dir string, d time.Duration, goroutines int, rate float64, buffer string, interval time.Duration) (uint64, error) {
	var opts []session.Option
	if buffer != "" {
		n, err := session.ParseSize(buffer)
		if err != nil {
			return 0, err
		}
		opts = append(opts, session.WithBufferSize(n))
	}
	s, err := session.New("load", opts...)
	if err != nil {
		return 0, err
	}
	defer s.Destroy()
	if _, err := s.Enable("load:event", ""); err != nil {
		return 0, err
	}
	tw, err := session.CreateTrace(dir, s)
	if err != nil {
		return 0, err
	}
	if err := s.Start(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- tw.Run(ctx, interval) }()
	fired := fire(d, goroutines, rate)
	if err := s.Stop(); err != nil {
		return 0, err
	}
	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		return 0, err
	}
	return fired, tw.Close()
}

func record(dir string, d time.Duration, goroutines int, rate float64, buffer, tracemark string) (uint64, time.Duration, error) {
	fired, cmd, err := record1(dir, d, goroutines, rate, buffer, tracemark)
	if err != nil {
		return 0, 0, err
	}
	return fired, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func record1(dir string, d time.Duration, goroutines int, rate float64, buffer, tracemark string, extra ...string) (uint64, *exec.Cmd, error) {
	return recordTo(io.Discard, nil, dir, d, goroutines, rate, buffer, tracemark, extra...)
}

// recordTo runs tracemark record with more arguments extra and more
// environment variables env, its standard output to stdout.
func recordTo(stdout io.Writer, env []string, dir string, d time.Duration, goroutines int, rate float64, buffer, tracemark string, extra ...string) (uint64, *exec.Cmd, error) {
	fire := fire
	if replayProducer {
		r, err := startReplay()
		if err != nil {
			return 0, nil, err
		}
		defer r.close()
		fire = func(d time.Duration, _ int, rate float64) uint64 { return r.fire(d, rate) }
	} else {
		a, err := agent.Start()
		if err != nil {
			return 0, nil, err
		}
		defer a.Close()
	}
	args := []string{"record", "-p", strconv.Itoa(os.Getpid()), "-e", "load:event", "-o", dir, "--progress", "none"}
	if otlpNoOutput {
		args = []string{"record", "-p", strconv.Itoa(os.Getpid()), "-e", "load:event", "--no-output", "--progress", "none"}
	}
	if buffer != "" {
		args = append(args, "--buffer", buffer)
	}
	cmd := exec.Command(tracemark, append(args, extra...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	// Fire once the recording runs: tracemark says so on stderr.
	sc := bufio.NewScanner(stderr)
	var out strings.Builder
	started := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "Recording ") {
			started = true
			break
		}
	}
	if !started {
		cmd.Wait()
		return 0, nil, fmt.Errorf("tracemark record did not start:\n%s", out.String())
	}
	go io.Copy(&out, stderr)
	fired := fire(d, goroutines, rate)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		return 0, nil, err
	}
	if err := cmd.Wait(); err != nil {
		return 0, nil, fmt.Errorf("tracemark record: %v\n%s", err, out.String())
	}
	return fired, cmd, nil
}

// countTrace reads a trace with package ctf: its events, and the events
// its packets say were discarded.
func countTrace(dir string) (events, lost uint64, err error) {
	r, err := ctf.Open(dir)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	for e, err := range r.Events() {
		if err != nil {
			return 0, 0, err
		}
		if e.Class != nil {
			events++
		}
		lost += e.Discarded
	}
	return events, lost, nil
}
