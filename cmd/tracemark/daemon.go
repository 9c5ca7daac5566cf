package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/procfind"
	"github.com/tracemark/tracemark/internal/wire"
)

func daemonCmd(a *app) *cobra.Command {
	var config string
	cmd := &cobra.Command{
		Use:     "daemon --config FILE",
		GroupID: "sessions",
		Short:   "Apply standing sessions to every matching process, also those that start later",
		Long: `Run in the foreground, keeping the sessions of a configuration file
applied to every instrumented process the daemon may reach (for root: of
every user and in containers) whose program name matches, also to those
that start later, as LTTng's session daemon does.

A "record" session streams each process into rotating trace files,
DIR/SESSION/PROGRAM-PID-START/NNNNNN-TIME/, one complete CTF trace per
chunk (rotate_size, rotate_every, keep); with "otlp" it also sends the
events, and the counts of events recorded and lost, to an OpenTelemetry
collector as record --otlp does, each process its own resource ("otlp":
{"endpoint", "headers", "compression", "timeout"}, each replacing the
daemon's OTEL_EXPORTER_OTLP_* variable of that meaning); with "otlp" and
"no_output": true it writes no files and only exports, as record
--no-output does. A "flight" session keeps an
overwrite-mode session in each process, snapshotted into
DIR/SESSION/PROGRAM-PID-START/snapshot-TIME/ when its snapshot_on marker
fires (written by the process itself, so the path is in its file system)
or, for every process, when the daemon gets SIGUSR1.

The configuration is read at start and again on SIGHUP: sessions removed
or changed stop (flight sessions are removed from the processes), new
ones apply at once; a bad file is reported and the running configuration
kept. SIGINT and SIGTERM stop every session cleanly. Processes that exit
leave complete traces; the daemon goes on. 'tracemark sessions --all'
shows which session applies where.

The configuration file (JSON):

  {"dir": "/var/lib/tracemark",
   "sessions": [
     {"name": "http", "match": "api-*", "enable": ["http:*"],
      "filter": "status >= 500", "rotate_size": "64M", "rotate_every": "1h",
      "keep": 24, "otlp": {"endpoint": "http://collector:4318"}},
     {"name": "blackbox", "mode": "flight", "enable": ["*"], "buffer": "4M",
      "snapshot_on": "app:panic", "snapshot_every": "10s"}]}`,
		Example: example(
			"sudo tracemark daemon --config /etc/tracemark/daemon.json",
			"sudo systemctl reload tracemark   # SIGHUP: re-read the configuration",
			"sudo kill -USR1 $(pidof tracemark)   # snapshot every flight session"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config == "" {
				return usagef("which configuration? give --config FILE")
			}
			cfg, err := loadDaemonConfig(config)
			if err != nil {
				return &usageError{err}
			}
			return runDaemon(cmd.Context(), a, config, cfg)
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "the configuration file (JSON), re-read on SIGHUP")
	return cmd
}

// daemon applies standing sessions to the processes of the host.
type daemon struct {
	a    *app
	path string
	base clockBase
	ctx  context.Context

	mu       sync.Mutex
	cfg      *daemonConfig
	sessions map[string]*dsession
	procs    map[procfind.Key]hostProc
}

// dsession is a standing session and what it runs in each process.
type dsession struct {
	spec   daemonSession
	dir    string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	recs     map[procfind.Key]*drec
	stopping bool // no new process; recordings that open stop at once
}

// drec is a session applied to one process.
type drec struct {
	p       hostProc
	client  *client.Client
	s       *client.Stream // record mode, once started
	dir     string
	context []string
}

func runDaemon(ctx context.Context, a *app, path string, cfg *daemonConfig) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := &daemon{a: a, path: path, base: newClockBase(), ctx: ctx, cfg: cfg,
		sessions: map[string]*dsession{}, procs: map[procfind.Key]hostProc{}}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	if sigSnapshot != nil {
		signal.Notify(sigs, sigSnapshot)
	}
	defer signal.Stop(sigs)
	d.logf("daemon: %d sessions from %s, traces under %s", len(cfg.Sessions), path, cfg.Dir)
	d.mu.Lock()
	for i := range cfg.Sessions {
		d.startSession(cfg.Sessions[i])
	}
	d.mu.Unlock()

	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		procfind.Watch(wctx, procfind.Options{AllNamespaces: true}, func(ag procfind.Agent) { go d.found(ag) })
	}()
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			d.reload()
			continue
		case sigSnapshot: // nil where there is none: never
			d.snapshotAll()
			continue
		}
		break
	}
	d.logf("daemon: stopping")
	stopWatch()
	<-watched
	d.mu.Lock()
	names := slices.Sorted(maps.Keys(d.sessions))
	d.mu.Unlock()
	for _, n := range names {
		d.stopSession(n)
	}
	return nil
}

func (d *daemon) logf(format string, args ...any) {
	fmt.Fprintf(d.a.stderr, format+"\n", args...)
}

// found is the watcher's callback: apply every session to a new process.
func (d *daemon) found(ag procfind.Agent) {
	p := d.a.infoOfNew(d.ctx, ag)
	if p.err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.procs {
		if !wire.ProcessAlive(k.PID) {
			delete(d.procs, k)
		}
	}
	d.procs[ag.Key()] = p
	for _, s := range d.sessions {
		d.apply(s, p)
	}
}

// startSession starts a session and applies it to the known processes;
// d.mu is held.
func (d *daemon) startSession(spec daemonSession) {
	s := &dsession{spec: spec, dir: filepath.Join(d.cfg.Dir, spec.Name), recs: map[procfind.Key]*drec{}}
	s.ctx, s.cancel = context.WithCancel(d.ctx)
	d.sessions[spec.Name] = s
	mode := spec.Mode
	if spec.NoOutput {
		mode += ", no_output"
	}
	d.logf("daemon: session %s (%s of %s, programs %q)", spec.Name, mode, spec.Enable, cmpOr(spec.Match, "*"))
	if spec.otlp != nil {
		for _, w := range spec.otlp.warnings {
			d.logf("daemon: session %s: otlp: warning: %s", spec.Name, w)
		}
	}
	for _, p := range d.procs {
		d.apply(s, p)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// apply applies a session to a process if it matches and does not have
// it yet; d.mu is held.
func (d *daemon) apply(s *dsession, p hostProc) {
	if !s.spec.matches(p.info.Program) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[p.Key()]; ok || s.stopping {
		return
	}
	r := &drec{p: p, client: client.NewClient(p.Socket), context: s.spec.context,
		dir: filepath.Join(s.dir, procDirName(p.info.Program, p.PID, p.info.Started))}
	s.recs[p.Key()] = r
	s.wg.Add(1)
	if s.spec.flight() {
		go d.runFlight(s, r)
	} else {
		go d.runRecord(s, r)
	}
}

// runFlight creates the flight session in a process.
func (d *daemon) runFlight(s *dsession, r *drec) {
	defer s.wg.Done()
	req := wire.EnableRequest{Rules: rules(s.spec.Enable, s.spec.Filter), Mode: "overwrite", Buffer: s.spec.Buffer,
		Context: s.spec.context}
	if s.spec.SnapshotOn != "" {
		req.Trigger = &wire.TriggerRequest{On: s.spec.SnapshotOn, Dir: r.dir, Every: s.spec.SnapshotEvery}
		if err := os.MkdirAll(r.dir, 0o755); err != nil && !r.p.Foreign {
			d.logf("daemon: session %s: %v", s.spec.Name, err)
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, d.a.timeout)
	defer cancel()
	if _, err := enableChecked(ctx, r.client, s.spec.Name, req); err != nil {
		d.logf("daemon: session %s: pid %d (%s): %v", s.spec.Name, r.p.PID, clean(r.p.info.Program), err)
		s.forget(r)
		return
	}
	d.logf("daemon: session %s: flight recorder in pid %d (%s)", s.spec.Name, r.p.PID, clean(r.p.info.Program))
}

func (s *dsession) forget(r *drec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recs[r.p.Key()] == r {
		delete(s.recs, r.p.Key())
	}
}

// runRecord streams a process into rotating traces until the session
// stops or the process ends.
func (d *daemon) runRecord(s *dsession, r *drec) {
	defer s.wg.Done()
	defer s.forget(r)
	req := wire.RecordRequest{Rules: rules(s.spec.Enable, s.spec.Filter), Buffer: s.spec.Buffer,
		Client: "tracemark daemon: " + s.spec.Name, StatsInterval: "1s", Context: s.spec.context}
	st, err := recordChecked(s.ctx, r.client, req)
	if err != nil {
		d.logf("daemon: session %s: pid %d (%s): %v", s.spec.Name, r.p.PID, clean(r.p.info.Program), err)
		return
	}
	defer st.Close()
	s.mu.Lock()
	r.s = st
	stopping := s.stopping
	s.mu.Unlock()
	if stopping { // stopSession ran while the recording started
		d.stopRec(r)
	}
	if s.spec.NoOutput {
		d.exportOnly(s, r, st)
		return
	}
	clk, _ := d.base.clockFor(st.Hello, r.p.PID)
	rot := &rotator{dir: r.dir, hello: st.Hello, clk: clk, ag: r.p.Agent, size: s.spec.rotSize, every: s.spec.rotEvery, keep: s.spec.Keep,
		ectx:   newEventContext(s.spec.context, st.Hello),
		log:    func(chunk string) { d.logf("daemon: session %s: pid %d: new chunk %s", s.spec.Name, r.p.PID, chunk) },
		logErr: func(err error) { d.logf("daemon: session %s: pid %d: %v", s.spec.Name, r.p.PID, err) }}
	// A session restarted (SIGHUP) for a process it recorded before
	// goes on in the same directory: number on after its chunks.
	tr, err := rot.open(firstChunk(r.dir), nil)
	if err != nil {
		d.logf("daemon: session %s: %v", s.spec.Name, err)
		d.stopRec(r)
		return
	}
	d.logf("daemon: session %s: recording pid %d (%s) into %s", s.spec.Name, r.p.PID, clean(r.p.info.Program), r.dir)
	c := newCapture(st, tr)
	check := func() error {
		rot.check(c)
		return nil
	}
	o, err := startOTLPFor(s.ctx, s.spec.otlp, r.client, st.Hello, r.p.PID)
	if err != nil {
		d.logf("daemon: session %s: pid %d: otlp: %v; recording to files only", s.spec.Name, r.p.PID, err)
	}
	if o != nil {
		o.prefix = fmt.Sprintf("daemon: session %s: pid %d (%s): ", s.spec.Name, r.p.PID, clean(r.p.info.Program))
		o.warn = func(line string) { d.logf("%s", line) }
	}
	c.onRecord = o.hook(func(*wire.Record) error { return check() })
	c.onStats = func() {
		rot.reap(false) // the chunks closed behind the capture
		rot.check(c)
	}
	o.track(c)
	runErr := c.run()
	if err := c.trace.close(); runErr == nil {
		runErr = err
	}
	rot.reap(true)
	why := "stream cut"
	if c.end != nil {
		why = c.end.Reason
	}
	d.logf("daemon: session %s: pid %d (%s) ended (%s): %d events in %d chunks", s.spec.Name, r.p.PID,
		clean(r.p.info.Program), why, c.events, rot.opens)
	if err := o.finish(d.a.stderr, d.a.timeout); err != nil {
		d.logf("daemon: session %s: pid %d: %v", s.spec.Name, r.p.PID, err)
	}
	if runErr != nil && !errors.Is(runErr, errCut) {
		d.logf("daemon: session %s: pid %d: %v", s.spec.Name, r.p.PID, runErr)
	}
}

// exportOnly sends a no_output session's recording of a process to its
// collector, writing no file, as record --no-output does; the records
// are transcoded on the exporter's workers, since no chunk needs them
// one by one. A process whose exporter cannot start is not recorded.
func (d *daemon) exportOnly(s *dsession, r *drec, st *client.Stream) {
	o, err := startOTLPFor(s.ctx, s.spec.otlp, r.client, st.Hello, r.p.PID)
	if err != nil {
		d.logf("daemon: session %s: pid %d: otlp: %v; not recorded (no_output)", s.spec.Name, r.p.PID, err)
		d.stopRec(r)
		return
	}
	o.prefix = fmt.Sprintf("daemon: session %s: pid %d (%s): ", s.spec.Name, r.p.PID, clean(r.p.info.Program))
	o.warn = func(line string) { d.logf("%s", line) }
	d.logf("daemon: session %s: recording pid %d (%s) to %s (no_output)", s.spec.Name, r.p.PID, clean(r.p.info.Program), o.url)
	c := newCapture(st, nil)
	o.track(c)
	o.parallel(c)
	runErr := c.run()
	why := "stream cut"
	if c.end != nil {
		why = c.end.Reason
	}
	d.logf("daemon: session %s: pid %d (%s) ended (%s): %d events", s.spec.Name, r.p.PID, clean(r.p.info.Program), why, c.events)
	if err := o.finish(d.a.stderr, d.a.timeout); err != nil {
		d.logf("daemon: session %s: pid %d: %v", s.spec.Name, r.p.PID, err)
	}
	if runErr != nil && !errors.Is(runErr, errCut) {
		d.logf("daemon: session %s: pid %d: %v", s.spec.Name, r.p.PID, runErr)
	}
}

func (d *daemon) stopRec(r *drec) {
	ctx, cancel := context.WithTimeout(context.Background(), d.a.timeout)
	defer cancel()
	if err := r.client.Stop(ctx, r.s.Hello.Recording); err != nil && wire.ProcessAlive(r.p.PID) {
		d.logf("daemon: stopping pid %d: %v", r.p.PID, err)
	}
}

// stopSession stops a session everywhere and waits for its recordings.
func (d *daemon) stopSession(name string) {
	d.mu.Lock()
	s := d.sessions[name]
	delete(d.sessions, name) // found applies it to no new process
	d.mu.Unlock()
	if s == nil {
		return
	}
	collect := func() []*drec {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.stopping = true
		out := make([]*drec, 0, len(s.recs))
		for _, r := range s.recs {
			out = append(out, r)
		}
		return out
	}
	var wg sync.WaitGroup
	if s.spec.flight() {
		// Let every Enable under way finish, then remove the session
		// from each process that has it.
		collect()
		s.wg.Wait()
		for _, r := range collect() {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), d.a.timeout)
				defer cancel()
				if err := r.client.Destroy(ctx, s.spec.Name); err != nil && wire.ProcessAlive(r.p.PID) {
					d.logf("daemon: session %s: removing from pid %d: %v", name, r.p.PID, err)
				}
			})
		}
	} else {
		// Recordings still starting see stopping once their stream is
		// open and stop themselves.
		for _, r := range collect() {
			s.mu.Lock()
			started := r.s != nil
			s.mu.Unlock()
			if started {
				wg.Go(func() { d.stopRec(r) })
			}
		}
	}
	wg.Wait()
	s.wg.Wait()
	s.cancel()
	d.logf("daemon: session %s stopped", name)
}

// reload re-reads the configuration: removed and changed sessions stop,
// new and changed ones start.
func (d *daemon) reload() {
	cfg, err := loadDaemonConfig(d.path)
	if err != nil {
		d.logf("daemon: reload: %v; keeping the running configuration", err)
		return
	}
	d.mu.Lock()
	old := d.cfg
	var stop []string
	for name, s := range d.sessions {
		i := slices.IndexFunc(cfg.Sessions, func(n daemonSession) bool { return n.Name == name })
		if i < 0 || !cfg.Sessions[i].same(&s.spec) || cfg.Dir != old.Dir {
			stop = append(stop, name)
		}
	}
	d.mu.Unlock()
	sort.Strings(stop)
	for _, n := range stop {
		d.stopSession(n)
	}
	d.mu.Lock()
	d.cfg = cfg
	n := 0
	for i := range cfg.Sessions {
		if _, ok := d.sessions[cfg.Sessions[i].Name]; !ok {
			d.startSession(cfg.Sessions[i])
			n++
		}
	}
	d.mu.Unlock()
	d.logf("daemon: reloaded %s: %d sessions stopped, %d started", d.path, len(stop), n)
}

// snapshotAll snapshots every flight session in every process, into the
// daemon's directory.
func (d *daemon) snapshotAll() {
	d.mu.Lock()
	var todo []struct {
		s *dsession
		r *drec
	}
	for _, s := range d.sessions {
		if !s.spec.flight() {
			continue
		}
		s.mu.Lock()
		for _, r := range s.recs {
			todo = append(todo, struct {
				s *dsession
				r *drec
			}{s, r})
		}
		s.mu.Unlock()
	}
	d.mu.Unlock()
	stamp := time.Now().Format("20060102-150405.000")
	var wg sync.WaitGroup
	for _, t := range todo {
		wg.Go(func() {
			dir := filepath.Join(t.r.dir, "snapshot-"+stamp)
			if err := d.snapshot(t.s.spec.Name, t.r, dir); err != nil {
				d.logf("daemon: session %s: snapshot of pid %d: %v", t.s.spec.Name, t.r.p.PID, err)
				return
			}
			d.logf("daemon: session %s: snapshot of pid %d in %s", t.s.spec.Name, t.r.p.PID, dir)
		})
	}
	wg.Wait()
}

func (d *daemon) snapshot(name string, r *drec, dir string) error {
	ctx, cancel := context.WithTimeout(d.ctx, 4*d.a.timeout)
	defer cancel()
	st, err := r.client.Snapshot(ctx, name)
	if err != nil {
		return err
	}
	defer st.Close()
	clk, _ := d.base.clockFor(st.Hello, r.p.PID)
	tr, err := createProcTrace(dir, st.Hello, clk, r.p.Agent, newEventContext(r.context, st.Hello))
	if err != nil {
		return err
	}
	c := newCapture(st, tr)
	runErr := c.run()
	if err := tr.close(); runErr == nil {
		runErr = err
	}
	return runErr
}

// rotator splits the trace of one process into chunks, each a complete
// CTF trace: DIR/NNNNNN-START/.
type rotator struct {
	dir   string
	hello wire.Hello
	clk   ctf.Clock
	ag    procfind.Agent
	size  uint64
	every time.Duration
	keep  int

	n      int       // index of the current chunk
	opened time.Time // when it was opened
	from   uint64    // capture bytes when it was opened
	opens  int       // chunks opened by this recording
	chunks []string
	log    func(chunk string)
	logErr func(error)   // what rotation could not do; the capture goes on
	ectx   *eventContext // shared by the chunks: it knows the classes

	// closing are the chunks rotated out whose packets are still being
	// written (traceOut.closeLater): the capture goes on meanwhile.
	closing []closingChunk
}

// closingChunk is a chunk being closed, and the result of its close;
// remove: it is to be removed once closed (keep).
type closingChunk struct {
	dir    string
	done   <-chan error
	remove bool
}

// reap takes the results of the chunks closed since the last time (all
// of them, waiting, if wait), removes those keep dropped, and logs what
// failed: the chunks are finished, the capture goes on.
func (r *rotator) reap(wait bool) {
	kept := r.closing[:0]
	for _, cc := range r.closing {
		var err error
		if wait {
			err = <-cc.done
		} else {
			select {
			case err = <-cc.done:
			default:
				kept = append(kept, cc)
				continue
			}
		}
		if err != nil {
			r.logErr(fmt.Errorf("chunk %s: %w", cc.dir, err))
		}
		if cc.remove {
			if err := os.RemoveAll(cc.dir); err != nil {
				r.logErr(fmt.Errorf("removing chunk %s (keep): %w", cc.dir, err))
			}
		}
	}
	clear(r.closing[len(kept):])
	r.closing = kept
}

// remove removes chunk dir, now or, if it is still being closed, once it
// is (reap).
func (r *rotator) remove(dir string) {
	for i := range r.closing {
		if r.closing[i].dir == dir {
			r.closing[i].remove = true
			return
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		r.logErr(fmt.Errorf("removing chunk %s (keep): %w", dir, err))
	}
}

// firstChunk returns the number of the next chunk in dir: one past the
// highest NNNNNN-TIME chunk there, 0 for none.
func firstChunk(dir string) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		var k int
		if _, err := fmt.Sscanf(e.Name(), "%06d-", &k); err == nil && e.IsDir() {
			n = max(n, k+1)
		}
	}
	return n
}

// open creates chunk n, with the event classes given, and makes it the
// current one.
func (r *rotator) open(n int, classes []ctf.EventClass) (*traceOut, error) {
	opened := time.Now()
	dir := filepath.Join(r.dir, fmt.Sprintf("%06d-%s", n, opened.Format("20060102-150405")))
	tr, err := createProcTrace(dir, r.hello, r.clk, r.ag, r.ectx)
	if err != nil {
		return nil, err
	}
	if len(classes) > 0 {
		if err := tr.w.AddEventClasses(classes); err != nil {
			tr.close()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("chunk %s: %w", dir, err)
		}
	}
	r.n, r.opened = n, opened
	r.opens++
	r.chunks = append(r.chunks, dir)
	return tr, nil
}

// check starts a new chunk when the current one is full or old enough;
// it runs on the capture's goroutine, between packets. If the next chunk
// cannot be created, the current one goes on, for another size or
// interval before the next try, and the error is logged.
func (r *rotator) check(c *capture) {
	full := r.size > 0 && c.bytes-r.from >= r.size
	old := r.every > 0 && time.Since(r.opened) >= r.every
	if !full && !old {
		return
	}
	// The classes are the writer's, added at once: all of them, with
	// packets still queued.
	next, err := r.open(r.n+1, c.trace.w.Classes())
	if err != nil {
		r.opened, r.from = time.Now(), c.bytes
		r.logErr(fmt.Errorf("cannot start a new chunk, going on in %s: %w", r.chunks[len(r.chunks)-1], err))
		return
	}
	// The old chunk is closed behind the capture: its last packets may
	// still wait for a disk that is behind, which must not stop it.
	r.closing = append(r.closing, closingChunk{dir: r.chunks[len(r.chunks)-2], done: c.trace.closeLater()})
	c.trace, r.from = next, c.bytes
	if r.log != nil {
		r.log(r.chunks[len(r.chunks)-1])
	}
	for r.keep > 0 && len(r.chunks) > r.keep {
		r.remove(r.chunks[0])
		r.chunks = r.chunks[1:]
	}
}
