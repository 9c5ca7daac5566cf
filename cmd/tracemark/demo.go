package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
)

// perfettoExport converts the demo's CTF trace into a Perfetto trace file
// (a variable so that tests can leave it out).
var perfettoExport = exportPerfetto

// demoGlobs are the markers the demo records: all of the service's.
var demoGlobs = []string{"http:*", "cache:*", "storage:*", "batch:*", "app:*", "classifier:*"}

func demoCmd(a *app) *cobra.Command {
	var (
		duration time.Duration
		out      string
		rate     int
		keep     bool
	)
	cmd := &cobra.Command{
		Use:     "demo",
		GroupID: "trace",
		Short:   "Trace a sample service from start to finish",
		Long: `Start a sample HTTP service (an item store with a cache, a slow and
flaky storage backend, a batch job and a rare bug) as a separate process,
generating its own load on the loopback interface; attach to it over its
agent's socket like an operator would; record all its markers for a few
seconds into a CTF trace; print the summary and statistics (requests per
status, a latency histogram); tell how to open the trace; stop the
service. Everything it runs is shown as the tracemark command to type.

With --keep the service keeps running after the demo, for an hour (or
until "kill PID"), so that you can try the commands on it yourself:
"tracemark ps", "tracemark list -p tracemark-demo-service", ...`,
		Example: example(
			"go run ./cmd/tracemark demo",
			"tracemark demo --duration 10s -o demo-trace",
			"tracemark demo --keep          # then: tracemark stats -p tracemark-demo-service -e 'http:*' --by status"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if duration <= 0 || duration > time.Hour {
				return usagef("--duration %v: want a positive duration up to 1h", duration)
			}
			if out != "" {
				if err := checkTraceDir(out); err != nil {
					return err
				}
			}
			return runDemo(cmd.Context(), a, duration, out, rate, keep)
		},
	}
	cmd.Flags().DurationVar(&duration, "duration", 5*time.Second, "how long to record")
	cmd.Flags().StringVarP(&out, "output", "o", "", "trace directory (default tracemark-demo-TIME)")
	cmd.Flags().IntVar(&rate, "rate", 300, "requests per second the service sends itself")
	cmd.Flags().BoolVar(&keep, "keep", false, fmt.Sprintf("leave the service running after the demo, for %gh, to try the commands on", keptLifetime.Hours()))
	return cmd
}

// keptLifetime is how long the service of "demo --keep" runs.
const keptLifetime = time.Hour

func runDemo(ctx context.Context, a *app, duration time.Duration, out string, rate int, keep bool) error {
	w := a.stdout
	fmt.Fprintln(w, "tracemark demo: an instrumented HTTP service, traced from the outside.")
	fmt.Fprintln(w)
	step(w, 1, "Starting the demo service as a separate process")
	svc, err := startDemoService(ctx, rate, keep)
	if err != nil {
		return err
	}
	kept := false
	defer func() {
		if !kept {
			svc.stop(a.stderr)
		}
	}()
	fmt.Fprintf(w, "   pid %d, serving %s, sending itself about %d requests/s\n\n", svc.pid, svc.http, rate)

	sock, err := client.FindSocket(svc.pid)
	if err != nil {
		return err
	}
	t := &target{pid: svc.pid, client: client.NewClient(sock)}
	defer t.client.Close()
	demoPlugin(ctx, a, t)
	if err := demoList(ctx, a, t); err != nil {
		return err
	}
	if out == "" {
		out = "tracemark-demo-" + time.Now().Format("20060102-150405")
	}
	req, statsOf := demoRequest(duration)
	step(w, 3, fmt.Sprintf("Recording for %v: tracemark record -p %d %s --duration %v -o %s",
		duration, svc.pid, "-e '"+strings.Join(demoGlobs, "' -e '")+"'", duration, out))
	view, _, _ := progressMode(a, "auto")
	rec := &recorder{a: a, t: t, out: out, view: view, extra: statsOf.add, noHints: true}
	if err := rec.run(ctx, req); err != nil {
		return err
	}
	fmt.Fprintln(w)
	step(w, 4, fmt.Sprintf("Statistics of the same events (live: tracemark stats -p %d -e http:request_done --by status --hist latency)", svc.pid))
	statsOf.print(w)
	fmt.Fprintln(w)
	step(w, 5, "Open the trace")
	openHints(w, out)
	fmt.Fprintln(w)
	if keep {
		kept = true
		svc.release()
		step(w, 6, fmt.Sprintf("The demo service keeps running for %gh (pid %d, %s); try:", keptLifetime.Hours(), svc.pid, svc.http))
		for _, c := range []string{"tracemark ps",
			"tracemark list -p %d -l",
			"tracemark stream -p %d -e 'storage:error'",
			"tracemark stats -p %d -e http:request_done --by status --hist latency",
			"kill %d   # stops it sooner"} {
			if strings.Contains(c, "%d") {
				c = fmt.Sprintf(c, svc.pid)
			}
			fmt.Fprintf(w, "   %s\n", c)
		}
		return nil
	}
	step(w, 6, "The demo service is stopped; \"tracemark demo --keep\" leaves it running, to try the commands on it")
	return nil
}

func step(w io.Writer, n int, what string) { fmt.Fprintf(w, "%d. %s\n", n, what) }

// demoList shows the service the way "tracemark ps" and "list" do.
func demoList(ctx context.Context, a *app, t *target) error {
	step(a.stdout, 2, fmt.Sprintf("Its markers, found through its agent: tracemark list -p %d", t.pid))
	rctx, cancel := a.requestCtx(ctx)
	defer cancel()
	ms, err := t.client.Markers(rctx, "")
	if err != nil {
		return err
	}
	printMarkers(a, ms, false, nil, 0)
	fmt.Fprintln(a.stdout)
	return nil
}

// demoStats are the statistics the demo computes while recording.
type demoStats struct {
	status  *aggregator // http:request_done per status
	latency *aggregator // http:request_done latency histogram
}

func (d *demoStats) add(r *wire.Record) error {
	if r.Class.Name == "http:request_done" {
		_ = d.status.add(r)
		_ = d.latency.add(r)
	}
	return nil
}

func (d *demoStats) print(w io.Writer) {
	d.status.render(w, "Requests per status:")
	d.latency.renderHists(w)
}

func demoRequest(duration time.Duration) (wire.RecordRequest, *demoStats) {
	req := wire.RecordRequest{
		Rules:    rules(demoGlobs, ""),
		Duration: duration.String(),
		Buffer:   "2M",
		Client:   "tracemark demo",
	}
	return req, &demoStats{status: newAggregator(aggSpec{by: []string{"status"}}), latency: newAggregator(aggSpec{hist: "latency"})}
}

func openHints(w io.Writer, out string) {
	fmt.Fprintf(w, "   Babeltrace 2:  babeltrace2 %s | less\n", out)
	fmt.Fprintf(w, "   Trace Compass: File > Open Trace..., choose %s/metadata\n", out)
	if perfettoExport == nil {
		fmt.Fprintln(w, "   Perfetto:      not yet: the Perfetto export will come with the trace formats work")
		return
	}
	pf := out + ".pftrace"
	if err := perfettoExport(out, pf); err != nil {
		fmt.Fprintf(w, "   Perfetto:      conversion failed: %v\n", err)
		return
	}
	fmt.Fprintf(w, "   Perfetto:      open %s in https://ui.perfetto.dev\n", pf)
}

// demoService is the running sample service.
type demoService struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	pid   int
	http  string
}

// startDemoService runs this executable's hidden service command and
// waits for it to report that its agent listens. A service to keep is
// detached: it outlives tracemark, without standard input or error.
func startDemoService(ctx context.Context, rate int, keep bool) (*demoService, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding tracemark's executable: %w", err)
	}
	cmd := exec.Command(exe, demoServiceName, fmt.Sprintf("--rate=%d", rate))
	cmd.Args[0] = "tracemark-demo-service" // what ps and list call it
	var stdin io.WriteCloser
	if keep {
		cmd.Args = append(cmd.Args, "--detached", "--lifetime="+keptLifetime.String())
		detach(cmd)
	} else {
		cmd.Stderr = os.Stderr
		orphanGuard(cmd)
		if stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the demo service: %w", err)
	}
	svc := &demoService{cmd: cmd, stdin: stdin, pid: cmd.Process.Pid}
	if err := svc.waitReady(ctx, stdout); err != nil {
		svc.stop(io.Discard)
		return nil, err
	}
	return svc, nil
}

// waitReady reads the service's "ready" line.
func (s *demoService) waitReady(ctx context.Context, stdout io.Reader) error {
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			for _, f := range strings.Fields(sc.Text()) {
				if v, ok := strings.CutPrefix(f, "http="); ok {
					s.http = v
				}
			}
			if strings.HasPrefix(sc.Text(), "ready ") {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- errors.New("the demo service exited before it was ready")
	}()
	select {
	case err := <-ready:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("the demo service did not start within 30s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release lets a kept service go: it is no longer this process's to wait
// for.
func (s *demoService) release() { _ = s.cmd.Process.Release() }

// stop ends the service: closing its stdin (or SIGTERM, for a detached
// one) asks it to shut down; after a grace period it is killed. Either
// way it is waited for, so that no process is left behind.
func (s *demoService) stop(log io.Writer) {
	if s.stdin != nil {
		s.stdin.Close()
	} else {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		fmt.Fprintln(log, "the demo service did not stop in time: killing it")
		_ = s.cmd.Process.Kill()
		<-done
	}
	fmt.Fprintf(log, "Demo service (pid %d) stopped.\n", s.pid)
}
