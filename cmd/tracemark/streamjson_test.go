package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// stream --json prints the jsonl schema of convert: the same keys, and
// the same fields as a recording of the same events converted.
func TestStreamJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	pid := strconv.Itoa(target.pid())
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir)
	p := e.start("cli", "stream", "-p", pid, "-e", "test:*", "--json")
	p.stderr.waitFor(t, "Streaming 2 markers of")
	target.do(t, "fire 6")
	target.do(t, "other 2")
	p.stdout.waitFor(t, `"event":"test:other","provider":"test","fields":{"n":1}`)
	p.signal(t, os.Interrupt)
	rec.signal(t, os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("stream --json exited %d:\n%s", code, p.stderr.text())
	}
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	conv := e.cli("convert", dir, "--to", "jsonl")
	if conv.code != 0 {
		t.Fatalf("convert: exit %d\n%s", conv.code, conv.stderr)
	}
	parse := func(text string) (keys []string, events []string) {
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%v: %q", err, l)
			}
			var ks []string
			for k := range m {
				ks = append(ks, k)
			}
			slices.Sort(ks)
			keys = append(keys, strings.Join(ks, ","))
			events = append(events, string(m["event"])+" "+string(m["fields"]))
		}
		return keys, events
	}
	sk, se := parse(p.stdout.text())
	ck, ce := parse(conv.stdout)
	if len(se) != 8 || !slices.Equal(sk, ck) || !slices.Equal(se, ce) {
		t.Errorf("stream --json and convert --to jsonl differ:\nstream:\n%s\nconvert:\n%s", p.stdout.text(), conv.stdout)
	}
	if want := `"test:value" {"i":5,"key":"c","lat":2000}`; !slices.Contains(se, want) {
		t.Errorf("stream --json lacks %s:\n%s", want, p.stdout.text())
	}
}
