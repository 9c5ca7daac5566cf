package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

var convertMarker = marker.Define2("convtest:event", marker.String("path"), marker.Int("status"))

// writeTestTrace records three events into a CTF trace in dir.
func writeTestTrace(t *testing.T, dir string) {
	t.Helper()
	s, err := session.New("convert-test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if _, err := s.Enable("convtest:*", ""); err != nil {
		t.Fatal(err)
	}
	tw, err := session.CreateTrace(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	convertMarker.Fire("/a", 200)
	convertMarker.Fire("/b", 404)
	convertMarker.Fire("/c \"q\"", 500)
	s.Stop()
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestConvertAndSummary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trace")
	writeTestTrace(t, dir)

	code, out, errs := runCLI("convert", dir, "--to", "text")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("convert --to text: exit %d, %d lines\n%s%s", code, len(lines), out, errs)
	}
	for i, want := range []string{`convtest:event: path="/a" status=200`, `path="/b" status=404`, `path="/c \"q\"" status=500`} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q lacks %q", i, lines[i], want)
		}
	}

	code, out, _ = runCLI("convert", dir, "--to", "jsonl")
	var statuses []int
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct {
			Event  string `json:"event"`
			Fields struct {
				Status int `json:"status"`
			} `json:"fields"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Event != "convtest:event" {
			t.Fatalf("jsonl line %q: %v", l, err)
		}
		statuses = append(statuses, ev.Fields.Status)
	}
	if code != 0 || len(statuses) != 3 || statuses[2] != 500 {
		t.Errorf("jsonl: exit %d, statuses %v", code, statuses)
	}

	pb := filepath.Join(t.TempDir(), "trace.pftrace")
	if code, _, errs := runCLI("convert", dir, "--to", "perfetto", "--counter", "convtest:event:status", "-o", pb); code != 0 {
		t.Fatalf("convert --to perfetto: exit %d: %s", code, errs)
	}
	// Package perfetto checks the content; here, that it is protobuf (a
	// Trace.packet field first) with the counter track.
	if data, _ := os.ReadFile(pb); len(data) == 0 || data[0] != 0x0a || !bytes.Contains(data, []byte("convtest:event status")) {
		t.Errorf("perfetto output is not a protobuf trace with the counter track: %q", data[:min(len(data), 64)])
	}
	if code, _, errs := runCLI("convert", dir, "--to", "perfetto", "--counter", "convtest:event:path"); code != 1 || !strings.Contains(errs, "not a number") {
		t.Errorf("--counter on a string field: exit %d, %q", code, errs)
	}
	if code, _, errs := runCLI("convert", dir, "--to", "perfetto", "--slice", "nocolon"); code != 2 || !strings.Contains(errs, "EVENT:FIELD") {
		t.Errorf("--slice without a field: exit %d, %q", code, errs)
	}

	pf := filepath.Join(t.TempDir(), "trace.json")
	if code, _, errs := runCLI("convert", dir, "--to", "chrome-json", "-o", pf); code != 0 {
		t.Fatalf("convert --to chrome-json: exit %d: %s", code, errs)
	}
	var doc struct {
		TraceEvents []struct {
			Name string `json:"name"`
			Ph   string `json:"ph"`
		} `json:"traceEvents"`
	}
	data, _ := os.ReadFile(pf)
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("chrome-json output is not JSON: %v", err)
	}
	instants := 0
	for _, e := range doc.TraceEvents {
		if e.Ph == "i" && e.Name == "convtest:event" {
			instants++
		}
	}
	if instants != 3 {
		t.Errorf("chrome-json file has %d convtest:event instants, want 3", instants)
	}

	code, out, _ = runCLI("summary", dir, "--json")
	var sum struct {
		Events  int `json:"events"`
		Markers []struct {
			Name   string `json:"name"`
			Events int    `json:"events"`
		} `json:"markers"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || code != 0 {
		t.Fatalf("summary --json: exit %d, %v\n%s", code, err, out)
	}
	if sum.Events != 3 || len(sum.Markers) != 1 || sum.Markers[0].Events != 3 {
		t.Errorf("summary %+v", sum)
	}
	if code, out, _ := runCLI("summary", dir); code != 0 || !strings.Contains(out, "convtest:event") {
		t.Errorf("summary text: exit %d\n%s", code, out)
	}
}

func TestConvertErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trace")
	writeTestTrace(t, dir)
	if code, _, errs := runCLI("convert", dir, "--to", "xml"); code != 2 || !strings.Contains(errs, "perfetto") {
		t.Errorf("unknown format: exit %d, %q", code, errs)
	}
	if code, _, _ := runCLI("convert", dir); code != 2 {
		t.Errorf("missing --to: exit %d, want 2", code)
	}
	if code, _, errs := runCLI("convert", filepath.Join(dir, "nope"), "--to", "text"); code != 1 || errs == "" {
		t.Errorf("missing trace: exit %d, %q", code, errs)
	}
	// Corrupt the stream: the error names the file and the byte offset.
	streams, _ := filepath.Glob(filepath.Join(dir, "channel0_*"))
	if len(streams) == 0 {
		t.Fatal("no stream file")
	}
	data, _ := os.ReadFile(streams[0])
	data[0] ^= 0xff // the packet magic
	os.WriteFile(streams[0], data, 0o644)
	code, _, errs := runCLI("convert", dir, "--to", "text")
	if code != 1 || !strings.Contains(errs, filepath.Base(streams[0])) || !strings.Contains(errs, "offset 0") {
		t.Errorf("corrupt trace: exit %d, %q; want exit 1 naming the file and offset", code, errs)
	}
}

// A tracemark note that cannot be read (here not JSON) does not make the
// trace unreadable: Babeltrace skips it as a comment, and so do summary,
// convert and stats, each with a warning naming the metadata line.
func TestUnreadableNoteIsAWarning(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trace")
	writeTestTrace(t, dir)
	path := filepath.Join(dir, "metadata")
	meta, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(meta), "event {", "event {\n\t/* tracemark: {\"span\": */", 1)
	if bad == string(meta) {
		t.Fatalf("metadata has no event block:\n%s", meta)
	}
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	const warning = "tracemark: warning: " // then the metadata file and line
	code, out, errs := runCLI("convert", dir, "--to", "text")
	if code != 0 || strings.Count(out, "convtest:event") != 3 || !strings.Contains(errs, warning) || !strings.Contains(errs, path+": line ") {
		t.Errorf("convert: exit %d, want 3 events and a warning naming %s\n%s%s", code, path, out, errs)
	}
	code, out, errs = runCLI("summary", dir)
	if code != 0 || !strings.Contains(out, "warning: "+path+": line ") || !strings.Contains(out, "convtest:event") {
		t.Errorf("summary: exit %d, want the counts and the warning\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI("stats", dir, "-e", "convtest:*")
	if code != 0 || !strings.Contains(errs, warning) || !strings.Contains(out, "convtest:event") {
		t.Errorf("stats: exit %d, want the counts and a warning\n%s%s", code, out, errs)
	}
}
