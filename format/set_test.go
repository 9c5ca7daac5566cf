package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/ctf"
)

// writeProcTrace writes the trace of one process of a host-wide
// recording: events of class "t:e" with field n at the given cycles, on a
// clock shared by the set.
func writeProcTrace(t *testing.T, dir, prog string, vpid, hostPID int, cycles ...uint64) {
	t.Helper()
	clk := ctf.Clock{Name: "monotonic", Frequency: 1e9, OffsetSeconds: 1700000000, UUID: [16]byte{9, 9, 9}}
	w, err := ctf.Create(dir, ctf.TraceInfo{Clock: clk, Env: map[string]string{
		"procname": prog, "vpid": strconv.Itoa(vpid), "host_pid": strconv.Itoa(hostPID), "hostname": "h"}})
	if err != nil {
		t.Fatal(err)
	}
	ec := ctf.EventClass{ID: 0, Name: "t:e", Fields: []ctf.Field{{Name: "n", Type: ctf.FieldType{Kind: ctf.Int, Bits: 64}}}}
	if err := w.AddEventClasses([]ctf.EventClass{ec}); err != nil {
		t.Fatal(err)
	}
	var recs []byte
	for _, c := range cycles {
		if recs, err = ctf.AppendRecord(recs, &ec, c, []ctf.Value{ctf.IntValue(int64(c))}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WritePacket(0, ctf.PacketInfo{BeginTS: cycles[0], EndTS: cycles[len(cycles)-1]}, recs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSetConvertAndSummary(t *testing.T) {
	dir := t.TempDir()
	writeProcTrace(t, filepath.Join(dir, "api-1-20260101-000000"), "api", 1, 301, 10, 40, 50)
	writeProcTrace(t, filepath.Join(dir, "db-7-20260101-000000"), "db", 7, 307, 20, 30, 60, 70)
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a trace"), 0o644); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := Convert(dir, JSONL, &out); err != nil {
		t.Fatal(err)
	}
	var got []string
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var ev struct {
			TS       int64  `json:"ts_ns"`
			PID      int64  `json:"pid"`
			Procname string `json:"procname"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		got = append(got, strconv.FormatInt(ev.TS-1700000000e9, 10)+"/"+ev.Procname+"/"+strconv.FormatInt(ev.PID, 10))
	}
	want := "10/api/301 20/db/307 30/db/307 40/api/301 50/api/301 60/db/307 70/db/307"
	if strings.Join(got, " ") != want {
		t.Errorf("merged jsonl:\n got %s\nwant %s", strings.Join(got, " "), want)
	}

	out.Reset()
	if err := Convert(dir, Text, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 7 || !strings.Contains(lines[0], " api:(301) t:e: ") || !strings.Contains(lines[1], " db:(307) t:e: ") {
		t.Errorf("merged text does not name the processes in time order:\n%s", out.String())
	}

	out.Reset()
	// One Perfetto trace with a process track per trace (package
	// perfetto's trace_processor test checks the content).
	if err := Convert(dir, Perfetto, &out); err != nil {
		t.Errorf("perfetto protobuf of a set: %v", err)
	} else if !bytes.Contains(out.Bytes(), []byte("api")) || !bytes.Contains(out.Bytes(), []byte("db")) {
		t.Errorf("perfetto protobuf of a set names neither process")
	}
	out.Reset()
	if err := Convert(dir, ChromeJSON, &out); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TraceEvents []struct {
			Name string         `json:"name"`
			Ph   string         `json:"ph"`
			PID  int            `json:"pid"`
			Args map[string]any `json:"args"`
		} `json:"traceEvents"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("chrome-json of a set: %v\n%s", err, out.String())
	}
	procs, events := map[int]any{}, map[int]int{}
	for _, e := range doc.TraceEvents {
		switch {
		case e.Name == "process_name":
			procs[e.PID] = e.Args["name"]
		case e.Ph == "i":
			events[e.PID]++
		}
	}
	if procs[301] != "api" || procs[307] != "db" || events[301] != 3 || events[307] != 4 {
		t.Errorf("chrome-json of a set: processes %v, events per pid %v", procs, events)
	}

	s, err := Summarize(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Events != 7 || len(s.Processes) != 2 || s.Processes[0].Program != "api" || s.Processes[1].HostPID != 307 ||
		s.Processes[1].Events != 4 || len(s.Markers) != 1 || s.Markers[0].Events != 7 || s.Duration != 60 {
		t.Errorf("summary of the set: %+v", s)
	}
	out.Reset()
	if err := s.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{`301\s+api\s+3\s+0\s+22:13:20.000000010\s+40ns\s+api-1-`, `307\s+db\s+4\s`, `\(2 processes\)`} {
		if !regexp.MustCompile(row).MatchString(out.String()) {
			t.Errorf("summary text lacks %q:\n%s", row, out.String())
		}
	}

	if _, err := Summarize(t.TempDir()); !errors.Is(err, ErrNoTrace) {
		t.Errorf("summary of an empty directory: %v, want ErrNoTrace", err)
	}
}
