package main

import (
	"strconv"
	"strings"
	"testing"
)

// Shell completion (cobra's __complete, what the completion scripts run)
// suggests pids and program names, marker names, fields and formats.
func TestCompletion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	if r := e.cli("enable", "-p", pid, "-s", "blackbox", "-e", "test:*", "--mode", "overwrite"); r.code != 0 {
		t.Fatalf("enable: %s", r.stderr)
	}
	for _, tt := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"list", "-p", ""}, []string{pid + "\ttm-target", "tm-target\tprogram name"}, nil},
		{[]string{"record", "-p", pid, "-e", "test:v"}, []string{"test:value\ti:int64 key:string lat:duration"}, []string{"test:other"}},
		{[]string{"stream", "-p", pid, "-e", ""}, []string{"test:*", "test:value\t", "test:other\tn:uint32"}, nil},
		{[]string{"stats", "-p", pid, "-e", "test:value", "--by", "key,l"}, []string{"key,lat\tduration"}, []string{"key,i"}},
		{[]string{"stats", "-p", pid, "-e", "test:other", "--hist", ""}, []string{"n\tuint32"}, []string{"lat"}},
		{[]string{"snapshot", "-p", pid, "-s", ""}, []string{"blackbox\toverwrite"}, nil},
		{[]string{"convert", "./trace", "--to", ""}, []string{"perfetto\t", "text\t", "jsonl\t"}, nil},
		{[]string{"record", "-p", pid, "-e", "test:*", "--mode", "o"}, []string{"overwrite\t"}, []string{"discard"}},
	} {
		r := e.cli(append([]string{"__complete"}, tt.args...)...)
		if r.code != 0 {
			t.Errorf("__complete %q: exit %d\n%s", tt.args, r.code, r.stderr)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("completing %q: no %q in\n%s", tt.args, w, r.stdout)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(r.stdout, n) {
				t.Errorf("completing %q: %q should not be offered:\n%s", tt.args, n, r.stdout)
			}
		}
	}
}
