package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTruncationShownOnlyWhereCut records events of which one had its
// string cut: Babeltrace shows _truncated on that event alone, and the
// summary, jsonl and stats count the events of the marker as one marker.
func TestTruncationShownOnlyWhereCut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := filepath.Join(e.runtime, "trace")
	rec := e.record(t, target, dir, "--progress", "none")
	target.do(t, "fire 5")
	target.do(t, "cut 1")
	target.do(t, "fire 2")
	rec.signal(t, os.Interrupt)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, rec.stderr.text())
	}
	if out := rec.stdout.text(); !regexp.MustCompile(`(?m)^\s+test:value\s+8\s+0\s+0$`).MatchString(out) {
		t.Errorf("the summary does not show 8 test:value events:\n%s", out)
	}
	bt := babeltrace(t, dir)
	if n := countLines(bt, "test:value:"); n != 8 || len(bt) != 8 {
		t.Errorf("babeltrace2 shows %d test:value events of %d, want 8:\n%s", n, len(bt), strings.Join(bt, "\n"))
	}
	if n := countLines(bt, "_truncated"); n != 1 || countLines(bt, `{ i = 0, key = "cut", lat = 1000, _truncated = 2 }`) != 1 {
		t.Errorf("babeltrace2 shows _truncated on %d events, want on the cut one only:\n%s", n, strings.Join(bt, "\n"))
	}

	r := e.cli("summary", "--json", dir)
	var sum struct {
		Markers []struct {
			Name      string `json:"name"`
			Events    uint64 `json:"events"`
			Truncated uint64 `json:"truncated"`
		} `json:"markers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("summary --json: %v\n%s", err, r.stdout)
	}
	for _, m := range sum.Markers {
		if m.Name == "test:value" && (m.Events != 8 || m.Truncated != 1) {
			t.Errorf("summary --json: %+v, want 8 events of which 1 truncated", m)
		}
	}
	if len(sum.Markers) != 2 {
		t.Errorf("summary --json lists %d markers, want 2: %+v", len(sum.Markers), sum.Markers)
	}
	r = e.cli("convert", dir, "--to", "jsonl")
	if n := strings.Count(r.stdout, `"truncated":["key"]`); n != 1 || strings.Count(r.stdout, `"event":"test:value"`) != 8 {
		t.Errorf("jsonl: %d truncated events, want 1 of 8:\n%s", n, r.stdout)
	}
	r = e.cli("stats", dir, "--json")
	var st struct {
		Counts []struct {
			Marker string `json:"marker"`
			Count  int    `json:"count"`
		} `json:"counts"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Counts) != 1 || st.Counts[0].Count != 8 {
		t.Errorf("stats on the trace: %v, %+v; want one row of 8 events:\n%s%s", err, st, r.stdout, r.stderr)
	}
}
