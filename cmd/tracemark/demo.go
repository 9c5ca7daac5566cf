package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/buildinfo"
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
		service  string
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

The sample service is not part of tracemark: it is the example program
examples/demo, with the example plugin it loads. The demo builds it
from the tracemark checkout around the working directory (go build,
which needs the Go toolchain; a first build compiles for a minute or
so, later ones take seconds), or runs the executable given with
--service (go install github.com/tracemark/tracemark/examples/demo@VERSION
builds one outside a checkout).

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
			return runDemo(cmd.Context(), a, duration, out, rate, keep, service)
		},
	}
	cmd.Flags().DurationVar(&duration, "duration", 5*time.Second, "how long to record")
	cmd.Flags().StringVarP(&out, "output", "o", "", "trace directory (default tracemark-demo-TIME)")
	cmd.Flags().IntVar(&rate, "rate", 300, "requests per second the service sends itself")
	cmd.Flags().StringVar(&service, "service", "", "the demo service's executable (default: built from this checkout's examples/demo)")
	cmd.Flags().BoolVar(&keep, "keep", false, fmt.Sprintf("leave the service running after the demo, for %gh, to try the commands on", keptLifetime.Hours()))
	return cmd
}

// keptLifetime is how long the service of "demo --keep" runs.
const keptLifetime = time.Hour

func runDemo(ctx context.Context, a *app, duration time.Duration, out string, rate int, keep bool, service string) error {
	w := a.stdout
	fmt.Fprintln(w, "tracemark demo: an instrumented HTTP service, traced from the outside.")
	fmt.Fprintln(w)
	step(w, 1, "Starting the demo service as a separate process")
	svc, err := buildAndStartDemoService(ctx, w, service, rate, keep)
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

// demoServiceProgram is what ps and list call the demo service.
const demoServiceProgram = "tracemark-demo-service"

// demoStartTimeout bounds the wait for the demo service to say it is
// ready, which it does once it has built and loaded its plugin: the build
// has 20 s (the service then runs without the plugin), compiling it a
// second or two, tens of seconds with the race detector.
const demoStartTimeout = 30 * time.Second * raceSlowdown

// demoServiceLifetime bounds the life of a demo service that is not
// kept, should nothing else stop it.
const demoServiceLifetime = 10 * time.Minute

// buildAndStartDemoService starts the demo service service, or one built
// from the checkout when service is "". The built executable is removed
// once the service runs: a running program needs no file.
func buildAndStartDemoService(ctx context.Context, w io.Writer, service string, rate int, keep bool) (*demoService, error) {
	if service != "" {
		return startDemoService(ctx, service, rate, keep)
	}
	tmp, err := os.MkdirTemp("", "tracemark-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	exe, err := buildDemoService(ctx, w, tmp)
	if err != nil {
		return nil, err
	}
	return startDemoService(ctx, exe, rate, keep)
}

// buildDemoService builds the demo service (examples/demo) of the
// tracemark checkout around the working directory into dir, and returns
// the executable.
func buildDemoService(ctx context.Context, w io.Writer, dir string) (string, error) {
	root, err := checkoutRoot()
	if err != nil {
		return "", err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("tracemark demo builds its sample service with the Go toolchain, and there is no go command on PATH: %w", err)
	}
	exe := filepath.Join(dir, demoServiceProgram)
	fmt.Fprintf(w, "   building it from %s: go build -o %s ./examples/demo\n", root, exe)
	start := time.Now()
	build := exec.CommandContext(ctx, goCmd, "build", "-o", exe, "./examples/demo")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the demo service (go build ./examples/demo in %s): %w\n%s", root, err, bytes.TrimSpace(out))
	}
	if d := time.Since(start); d > 2*time.Second {
		fmt.Fprintf(w, "   built in %.1fs (later builds reuse Go's build cache)\n", d.Seconds())
	}
	return exe, nil
}

// errNoCheckout explains that the demo service is not part of tracemark.
func errNoCheckout() error {
	version := buildinfo.Read().Version
	if !strings.HasPrefix(version, "v") {
		version = "latest"
	}
	return fmt.Errorf("tracemark demo builds its sample service (examples/demo) from the tracemark source, and the working directory is not in a checkout of %s: "+
		"run the demo in one (git clone https://%s && cd tracemark && go run ./cmd/tracemark demo), "+
		"or install the service and name it: go install %s/examples/demo@%s && tracemark demo --service \"$(go env GOPATH)/bin/demo\"",
		buildinfo.ModulePath, buildinfo.ModulePath, buildinfo.ModulePath, version)
}

// checkoutRoot returns the directory of the tracemark module around the
// working directory.
func checkoutRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("tracemark demo: %w", err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if modulePath(b) == buildinfo.ModulePath {
				return dir, nil
			}
			return "", errNoCheckout() // another module
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errNoCheckout()
		}
		dir = parent
	}
}

// modulePath returns the module path a go.mod file declares.
func modulePath(gomod []byte) string {
	for line := range strings.SplitSeq(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// startDemoService runs the demo service exe and waits for it to report
// that its agent listens. A service to keep is detached: it outlives
// tracemark, without standard input or error.
func startDemoService(ctx context.Context, exe string, rate int, keep bool) (*demoService, error) {
	cmd := exec.Command(exe, fmt.Sprintf("--rate=%d", rate))
	cmd.Args[0] = demoServiceProgram
	var stdin io.WriteCloser
	var err error
	if keep {
		cmd.Args = append(cmd.Args, "--lifetime="+keptLifetime.String())
		detach(cmd)
	} else {
		cmd.Args = append(cmd.Args, "--attached", "--lifetime="+demoServiceLifetime.String())
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
		return nil, fmt.Errorf("starting the demo service %s: %w", exe, err)
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
	case <-time.After(demoStartTimeout):
		return fmt.Errorf("the demo service did not start within %v", demoStartTimeout)
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
