package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/bytesize"
)

// errConfig is wrapped by errors in the daemon's configuration file.
var errConfig = errors.New("daemon configuration")

// daemonConfig is the daemon's configuration file (JSON):
//
//	{
//	  "dir": "/var/lib/tracemark",
//	  "sessions": [
//	    {"name": "http", "match": "api-*", "enable": ["http:*"],
//	     "rotate_size": "64M", "rotate_every": "1h", "keep": 24,
//	     "otlp": {"endpoint": "http://collector:4318",
//	              "headers": {"authorization": "Bearer xyz"}}},
//	    {"name": "fleet", "enable": ["rpc:*"], "no_output": true,
//	     "otlp": {"endpoint": "http://collector:4318"}},
//	    {"name": "blackbox", "mode": "flight", "enable": ["*"],
//	     "buffer": "4M", "snapshot_on": "app:panic"}
//	  ]
//	}
type daemonConfig struct {
	// Dir is where traces go: DIR/SESSION/PROGRAM-PID-START/.
	Dir      string          `json:"dir"`
	Sessions []daemonSession `json:"sessions"`
}

// daemonSession is one standing rule: what to record in which processes.
type daemonSession struct {
	Name string `json:"name"`
	// Match is a glob over program names; empty or "*": every process.
	Match  string   `json:"match,omitempty"`
	Enable []string `json:"enable"`
	Filter string   `json:"filter,omitempty"`
	// Mode is "record" (default: stream to rotating trace files) or
	// "flight" (an overwrite-mode session in each process, snapshotted
	// on a trigger marker or on SIGUSR1 to the daemon).
	Mode   string `json:"mode,omitempty"`
	Buffer string `json:"buffer,omitempty"`
	// Record mode: start a new trace chunk after this many bytes of
	// records or this long, keeping the newest Keep chunks (0: all).
	RotateSize  string `json:"rotate_size,omitempty"`
	RotateEvery string `json:"rotate_every,omitempty"`
	Keep        int    `json:"keep,omitempty"`
	// Flight mode: snapshot when a marker matching SnapshotOn fires, at
	// most once per SnapshotEvery.
	SnapshotOn    string `json:"snapshot_on,omitempty"`
	SnapshotEvery string `json:"snapshot_every,omitempty"`
	// Context lists the fields to add to every event (record --context).
	Context []string `json:"context,omitempty"`
	// OTLP, in record mode, also sends the events to a collector, as
	// record --otlp does.
	OTLP *daemonOTLP `json:"otlp,omitempty"`
	// NoOutput, with OTLP, writes no trace files: the events go to the
	// collector only (record --no-output).
	NoOutput bool `json:"no_output,omitempty"`

	rotSize  uint64
	rotEvery time.Duration
	context  []string
	otlp     *otlpTarget
}

// daemonOTLP is a session's collector. Each key replaces the daemon's
// OTEL_EXPORTER_OTLP_* variable of the same meaning (headers key by key);
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES apply as for record.
type daemonOTLP struct {
	// Endpoint is the collector's OTLP/HTTP base URL (required).
	Endpoint string            `json:"endpoint"`
	Headers  map[string]string `json:"headers,omitempty"`
	// Compression is "gzip" or "none".
	Compression string `json:"compression,omitempty"`
	// Timeout bounds each request, as a Go duration ("10s").
	Timeout string `json:"timeout,omitempty"`
}

// config returns the exporter configuration: the daemon's environment,
// then the session's keys.
func (o *daemonOTLP) config() (*otlpTarget, error) {
	if o.Endpoint == "" {
		return nil, errors.New("no \"endpoint\"")
	}
	// An endpoint given to otlp.New wins over the per-signal variables,
	// which name other collectors: the session's wins.
	opts := []otlp.Option{otlp.WithEnv(), otlp.WithHeaders(o.Headers)}
	if o.Compression != "" {
		opts = append(opts, otlp.WithCompression(strings.ToLower(o.Compression)))
	}
	if o.Timeout != "" {
		d, err := time.ParseDuration(o.Timeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("timeout %q: want a duration such as 10s", o.Timeout)
		}
		opts = append(opts, otlp.WithTimeout(d))
	}
	t := &otlpTarget{Endpoint: o.Endpoint, opts: opts}
	if err := t.check(); err != nil { // checks the URL and the compression
		return nil, err
	}
	return t, nil
}

// checkNoOutput refuses no_output where it cannot apply, as record
// refuses --no-output.
func (s *daemonSession) checkNoOutput() error {
	switch {
	case !s.NoOutput:
		return nil
	case s.OTLP == nil:
		return errors.New("no_output needs otlp: without trace files or a collector the events would go nowhere")
	case s.RotateSize != "" || s.RotateEvery != "" || s.Keep != 0:
		return errors.New("no_output and rotation (rotate_size, rotate_every, keep): there are no files to rotate")
	case len(s.Context) > 0:
		return errors.New("no_output and context: context fields go into the trace files only, not to the collector")
	}
	return nil
}

// flight reports whether the session is a flight recorder.
func (s *daemonSession) flight() bool { return s.Mode == "flight" }

// loadDaemonConfig reads and checks the configuration file.
func loadDaemonConfig(path string) (*daemonConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	var c daemonConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w %s: %w", errConfig, path, err)
	}
	if c.Dir == "" {
		return nil, fmt.Errorf("%w %s: no \"dir\" for the traces", errConfig, path)
	}
	if !filepath.IsAbs(c.Dir) {
		c.Dir = filepath.Join(filepath.Dir(path), c.Dir)
	}
	seen := map[string]bool{}
	for i := range c.Sessions {
		s := &c.Sessions[i]
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w %s: session %q: %s", errConfig, path, s.Name, fmt.Sprintf(format, args...))
		}
		if s.Name == "" || s.Name != filepath.Base(s.Name) || s.Name[0] == '.' {
			return nil, bad("want a name that is a plain file name")
		}
		if seen[s.Name] {
			return nil, bad("defined twice")
		}
		seen[s.Name] = true
		if len(s.Enable) == 0 {
			return nil, bad("no \"enable\" globs")
		}
		if _, err := filepath.Match(s.Match, ""); err != nil {
			return nil, bad("match %q: %v", s.Match, err)
		}
		switch s.Mode {
		case "", "record":
			s.Mode = "record"
			if s.SnapshotOn != "" {
				return nil, bad("snapshot_on needs mode flight")
			}
		case "flight":
			if s.RotateSize != "" || s.RotateEvery != "" {
				return nil, bad("rotation is for mode record")
			}
		default:
			return nil, bad("mode %q: want record or flight", s.Mode)
		}
		if s.RotateSize != "" {
			n, err := bytesize.Parse(s.RotateSize)
			if err != nil || n <= 0 {
				return nil, bad("rotate_size %q: want a size such as 64M", s.RotateSize)
			}
			s.rotSize = uint64(n)
		}
		if s.RotateEvery != "" {
			d, err := time.ParseDuration(s.RotateEvery)
			if err != nil || d < time.Second {
				return nil, bad("rotate_every %q: want a duration of at least 1s", s.RotateEvery)
			}
			s.rotEvery = d
		}
		names, err := parseContext(s.Context)
		if err != nil {
			return nil, bad("context: %v", err)
		}
		s.context = names
		if s.OTLP != nil {
			if s.flight() {
				return nil, bad("otlp is for mode record: a flight recorder's events stay in the process until a snapshot")
			}
			if s.otlp, err = s.OTLP.config(); err != nil {
				return nil, bad("otlp: %v", err)
			}
		}
		if s.Keep < 0 {
			return nil, bad("keep %d: want 0 (all) or more", s.Keep)
		}
		if err := s.checkNoOutput(); err != nil {
			return nil, bad("%v", err)
		}
	}
	return &c, nil
}

// same reports whether two sessions are configured alike (a reload keeps
// them running).
func (s *daemonSession) same(o *daemonSession) bool {
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(o)
	return string(a) == string(b)
}

// matches reports whether the session applies to a program.
func (s *daemonSession) matches(program string) bool {
	if s.Match == "" || s.Match == "*" {
		return true
	}
	ok, _ := filepath.Match(s.Match, program)
	return ok
}
