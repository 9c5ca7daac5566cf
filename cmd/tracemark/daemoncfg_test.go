package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/export/otlp"
	"github.com/tracemark/tracemark/internal/otlptest"
	"github.com/tracemark/tracemark/internal/wire"
)

func TestDaemonConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "d.json")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := loadDaemonConfig(write(`{"dir": "out", "sessions": [
		{"name": "a", "enable": ["x:*"], "rotate_size": "1M", "rotate_every": "1h", "keep": 3, "context": ["pid,cpu"]},
		{"name": "b", "mode": "flight", "match": "api-*", "enable": ["*"], "snapshot_on": "app:panic"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Sessions[0], c.Sessions[1]
	if c.Dir != filepath.Join(dir, "out") || a.Mode != "record" || a.rotSize != 1<<20 || a.rotEvery.Hours() != 1 ||
		strings.Join(a.context, ",") != "pid,cpu" || !b.flight() || !b.matches("api-1") || b.matches("db") || !a.matches("anything") {
		t.Errorf("config %+v", c)
	}
	for _, bad := range []string{
		`{"sessions": []}`,
		`{"dir": "/x", "sessions": [{"name": "a"}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"]}, {"name": "a", "enable": ["*"]}]}`,
		`{"dir": "/x", "sessions": [{"name": "../a", "enable": ["*"]}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "mode": "fast"}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "match": "["}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "rotate_size": "lots"}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "rotate_every": "1ms"}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "mode": "flight", "rotate_size": "1M"}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "snapshot_on": "x"}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "context": ["tid", "tid"]}]}`,
		`{"dir": "/x", "sessions": [`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "mode": "flight", "otlp": {"endpoint": "http://c:4318"}}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "otlp": {}}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "otlp": {"endpoint": "c:4318"}}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "otlp": {"endpoint": "http://c:4318", "compression": "lz4"}}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "otlp": {"endpoint": "http://c:4318", "timeout": "soon"}}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "no_output": true}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "no_output": true, "keep": 3, "otlp": {"endpoint": "http://c:4318"}}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "no_output": true, "rotate_every": "1h", "otlp": {"endpoint": "http://c:4318"}}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "no_output": true, "context": ["tid"], "otlp": {"endpoint": "http://c:4318"}}]}`,
		`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"], "no_output": true, "mode": "flight", "otlp": {"endpoint": "http://c:4318"}}]}`,
	} {
		if _, err := loadDaemonConfig(write(bad)); !errors.Is(err, errConfig) {
			t.Errorf("%s: %v, want a configuration error", bad, err)
		}
	}
}

// A session's otlp keys replace the daemon's OTEL_EXPORTER_OTLP_*
// variables of the same meaning, headers key by key, and its endpoint
// wins over the per-signal ones: an exporter made from the configuration
// sends its logs, gzipped, to the session's collector with the merged
// headers.
func TestDaemonConfigOTLP(t *testing.T) {
	col := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "tenant=acme,authorization=old")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")
	t.Setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://elsewhere:4318/v1/logs")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli")
	p := filepath.Join(t.TempDir(), "d.json")
	if err := os.WriteFile(p, []byte(`{"dir": "/x", "sessions": [{"name": "a", "enable": ["*"],
		"otlp": {"endpoint": "`+col.URL()+`", "headers": {"authorization": "Bearer new"}, "compression": "GZIP"}},
		{"name": "b", "enable": ["*"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := loadDaemonConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	o := c.Sessions[0].otlp
	if o == nil || o.Endpoint != col.URL() {
		t.Fatalf("otlp config %+v", o)
	}
	if len(o.warnings) != 1 || !strings.Contains(o.warnings[0], "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION") {
		t.Errorf("warnings %q, want the unknown compression's", o.warnings)
	}
	exp, err := o.newExporter()
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Log(&otlp.Class{Name: "a:b"}, 1, nil, 0) {
		t.Fatal("event dropped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exp.Close(ctx); err != nil {
		t.Fatal(err) // sending elsewhere gives up here
	}
	hs := col.Headers()
	if len(col.Logs()) != 1 || len(hs) == 0 || col.Gzipped() == 0 {
		t.Fatalf("collector got %d logs, %d requests, %d gzipped", len(col.Logs()), len(hs), col.Gzipped())
	}
	if h := hs[0]; h.Get("tenant") != "acme" || h.Get("authorization") != "Bearer new" {
		t.Errorf("headers %v", h)
	}
	if c.Sessions[1].otlp != nil {
		t.Errorf("session without otlp exports: %+v", c.Sessions[1].otlp)
	}
}

// The example configuration loads.
func TestDaemonConfigExample(t *testing.T) {
	c, err := loadDaemonConfig("../../examples/daemon/daemon.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sessions) != 2 || c.Sessions[0].otlp == nil {
		t.Errorf("example sessions %+v", c.Sessions)
	}
}

func TestSelector(t *testing.T) {
	info := func(pid int, prog string) hostProc {
		p := hostProc{info: &wire.Info{Program: prog}}
		p.PID = pid
		return p
	}
	for _, c := range []struct {
		m     multiFlags
		pids  []string
		multi bool
		match []bool // info(1, "api-1"), info(2, "db"), info(3, "api-2")
	}{
		{multiFlags{all: true}, nil, true, []bool{true, true, true}},
		{multiFlags{name: "api-*"}, nil, true, []bool{true, false, true}},
		{multiFlags{}, []string{"2", "3"}, true, []bool{false, true, true}},
		{multiFlags{}, []string{"db", "1"}, true, []bool{true, true, false}},
		{multiFlags{}, []string{"2"}, false, nil},
	} {
		f := recFlags{pids: c.pids}
		sel, multi, err := c.m.selector(&f)
		if err != nil || multi != c.multi {
			t.Errorf("%+v %v: multi %v, %v", c.m, c.pids, multi, err)
			continue
		}
		for i, p := range []hostProc{info(1, "api-1"), info(2, "db"), info(3, "api-2")} {
			if c.match != nil && sel.match(p) != c.match[i] {
				t.Errorf("%+v %v: match(%d %s) = %v", c.m, c.pids, p.PID, p.info.Program, !c.match[i])
			}
		}
	}
	for _, bad := range []struct {
		m    multiFlags
		pids []string
	}{{multiFlags{all: true}, []string{"1"}}, {multiFlags{name: "["}, nil}, {multiFlags{}, []string{"1", "-4"}}} {
		f := recFlags{pids: bad.pids}
		if _, _, err := bad.m.selector(&f); err == nil {
			t.Errorf("%+v %v: no usage error", bad.m, bad.pids)
		}
	}
	if (selector{pids: []int{1}}).watches() || !(selector{names: []string{"x"}}).watches() {
		t.Error("watches: only pids need no watching")
	}
}
