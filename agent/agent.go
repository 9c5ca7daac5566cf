package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/session"
)

// Limits on what clients may hold in the process at once.
const (
	// MaxSessions bounds the named sessions.
	MaxSessions = 16
	// MaxRecordings bounds the ephemeral sessions of live recordings.
	MaxRecordings = 16
	// MaxConns bounds the open connections by default (WithMaxConns).
	MaxConns = 64
)

// Errors returned by Start.
var (
	// ErrRunning is returned by Start when an agent of this process
	// already listens on the socket.
	ErrRunning = errors.New("agent already running")
	// ErrUnsafeDir is wrapped by errors about a socket directory that is
	// not a directory owned by this user with mode 0700 or stricter.
	ErrUnsafeDir = errors.New("unsafe socket directory")
)

// Option configures Start. Options are made by the With functions of
// this package (and agentmodules.WithHost); the zero configuration, Start
// without options, is the default of each. An option given an invalid
// value makes Start fail with an error naming the option.
type Option interface{ apply(*config) }

// optionFunc is an Option that sets its field of the configuration.
type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	dir          string
	logger       *slog.Logger
	readTimeout  time.Duration
	writeTimeout time.Duration
	idleTimeout  time.Duration
	maxConns     int
	memory       int64      // WithMemoryBudget; 0: leave the budget alone
	modules      ModuleHost // WithModuleHost; nil: the process loads no modules
	errs         []error    // invalid option values, reported by Start
}

// invalid records that option was given an invalid value.
func (c *config) invalid(option string, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", option, fmt.Sprintf(format, args...)))
}

// WithDir puts the socket in dir instead of the user's runtime directory
// ($XDG_RUNTIME_DIR/tracemark or /tmp/tracemark-UID), which is the
// default and what an empty dir keeps. The directory is created with mode
// 0700 if it does not exist, and refused if it is not owned by the
// process's user or is open to others. Clients must then be told where it
// is (tracemark --socket, or TRACEMARK_SOCKET).
func WithDir(dir string) Option { return optionFunc(func(c *config) { c.dir = dir }) }

// WithLogger makes the agent log refused connections, recordings, and
// modules loaded, refused and unloaded (WithModuleHost) to l.
// By default, and with a nil l, it logs nothing: it is a guest in the
// process.
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// WithTimeouts sets how long a client may take to send a request (read,
// default 5s) and how long a response or a batch of event frames may take
// to be accepted by the client (write, default 10s). A client slower than
// that is disconnected; its ephemeral session is destroyed. A zero
// duration keeps that default; a negative one is invalid.
func WithTimeouts(read, write time.Duration) Option {
	return optionFunc(func(c *config) {
		if read < 0 || write < 0 {
			c.invalid("WithTimeouts", "negative timeout (read %v, write %v); 0 keeps the default", read, write)
			return
		}
		if read > 0 {
			c.readTimeout = read
		}
		if write > 0 {
			c.writeTimeout = write
		}
	})
}

// WithMaxConns bounds the number of open connections (default MaxConns,
// which n = 0 keeps; n must not be negative). Connections over the bound
// are answered 503 and closed.
func WithMaxConns(n int) Option {
	return optionFunc(func(c *config) {
		switch {
		case n < 0:
			c.invalid("WithMaxConns", "%d connections; want at least 1, or 0 for the default %d", n, MaxConns)
		case n > 0:
			c.maxConns = n
		}
	})
}

// WithMemoryBudget sets the process's budget for recording memory, in
// bytes, when the agent starts (session.SetMemoryBudget): the buffers of
// every session, the agent's and the program's own, and snapshot copies
// while they run, must fit in it. A session, recording or snapshot that
// would exceed it is refused with an error that names the budget, the
// request and the sessions holding the memory. Without this option, or
// with bytes = 0, the budget is TRACEMARK_MEMORY, or
// session.DefaultMemoryBudget (256 MiB) lowered to an eighth of the
// container's memory limit. A negative bytes is invalid.
func WithMemoryBudget(bytes int64) Option {
	return optionFunc(func(c *config) {
		switch {
		case bytes < 0:
			c.invalid("WithMemoryBudget", "%d bytes; want a positive budget, or 0 to leave it alone", bytes)
		case bytes > 0:
			c.memory = bytes
		}
	})
}

// Agent is a running control server. Its methods are safe for concurrent
// use.
type Agent struct {
	cfg     config
	socket  string
	started time.Time
	ln      *guardListener
	srv     *http.Server
	served  chan struct{} // closed when Serve returns

	done      chan struct{} // closed by Close: recordings end
	closeOnce sync.Once
	closeErr  error

	mu         sync.Mutex
	sessions   map[string]*named
	recordings map[string]*recording
	reserved   int // recordings being set up
	nextID     uint64
}

// Start starts the agent: it creates the socket and serves clients on a
// goroutine until Close. See the package documentation.
func Start(opts ...Option) (*Agent, error) {
	cfg := config{readTimeout: 5 * time.Second, writeTimeout: 10 * time.Second, idleTimeout: time.Minute, maxConns: MaxConns}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if err := supported(); err != nil {
		return nil, err
	}
	if cfg.memory > 0 {
		session.SetMemoryBudget(cfg.memory)
	}
	dir := cfg.dir
	if dir == "" {
		dir = wire.SocketDir()
	}
	if err := prepareDir(dir); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	removeStale(dir, cfg.logger)
	ln, path, err := listen(dir)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a := &Agent{
		cfg:        cfg,
		socket:     path,
		started:    time.Now(),
		ln:         newGuardListener(ln, cfg.maxConns, cfg.logger),
		served:     make(chan struct{}),
		done:       make(chan struct{}),
		sessions:   make(map[string]*named),
		recordings: make(map[string]*recording),
	}
	a.srv = &http.Server{
		Handler:           a.router(),
		ReadHeaderTimeout: cfg.readTimeout,
		ReadTimeout:       cfg.readTimeout,
		WriteTimeout:      cfg.writeTimeout,
		IdleTimeout:       cfg.idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(a.served)
		_ = a.srv.Serve(a.ln)
	}()
	return a, nil
}

// Socket returns the path of the agent's socket.
func (a *Agent) Socket() string { return a.socket }

// Refused returns how many connections were refused because the peer was
// neither the process's user nor root.
func (a *Agent) Refused() uint64 { return a.ln.refused.Load() }

// Close stops the agent: live recordings end (their clients get the rest
// of their events and an end frame saying "shutdown"), named sessions are
// destroyed and the socket is removed. It waits at most a few seconds for
// clients to finish. Calling it again returns the first result.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		close(a.done)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := a.srv.Shutdown(ctx); err != nil {
			a.srv.Close() // clients too slow to finish: cut them
		}
		<-a.served
		a.mu.Lock()
		for name, n := range a.sessions {
			n.destroy()
			delete(a.sessions, name)
		}
		a.mu.Unlock()
		if err := os.Remove(a.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.closeErr = fmt.Errorf("agent: removing socket: %w", err)
		}
	})
	return a.closeErr
}

// listen creates the socket of this process in dir, mode 0600.
func listen(dir string) (*net.UnixListener, string, error) {
	path := filepath.Join(dir, wire.SocketName(os.Getpid()))
	if _, err := os.Lstat(path); err == nil {
		// Our pid's socket: another agent of this process, or the
		// leftover of a dead process that had our pid.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, "", fmt.Errorf("%w on %s", ErrRunning, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, "", fmt.Errorf("removing stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, "", err
	}
	// The directory is 0700, so nobody else could reach the socket
	// before this chmod; it only makes the socket's own mode say so.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, "", err
	}
	return ln, path, nil
}
