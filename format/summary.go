package format

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/internal/encode"
)

// Summary describes a trace: who was traced, when, how many events of each
// marker, and what was lost. Its JSON form (encoding/json) is meant for
// `tracemark summary --json`; field names are stable.
type Summary struct {
	// Dir is the trace directory.
	Dir string `json:"dir"`
	// Program, PID and Host are the traced program's name, process id and
	// host name, from the trace environment (procname, vpid, hostname);
	// empty or 0 if the trace does not say.
	Program string `json:"program,omitempty"`
	PID     int64  `json:"pid,omitempty"`
	Host    string `json:"host,omitempty"`
	// Name is the trace (session) name, from the trace_name environment
	// value.
	Name string `json:"name,omitempty"`
	// Env is the whole trace environment.
	Env map[string]string `json:"env"`
	// Clock is the name of the trace's clock.
	Clock string `json:"clock"`

	// Events is the number of events (notices of lost data excluded).
	Events uint64 `json:"events"`
	// First and Last are the times of the first and last events, in UTC;
	// zero (and left out of the JSON form) if there are none. Duration is
	// the time between them.
	First    time.Time     `json:"first,omitzero"`
	Last     time.Time     `json:"last,omitzero"`
	Duration time.Duration `json:"duration_ns"`
	// LostEvents and LostPackets are the totals of Streams.
	LostEvents  uint64 `json:"lost_events"`
	LostPackets uint64 `json:"lost_packets"`

	// Markers has one entry per event class of the trace, also those with
	// no events, sorted by name.
	Markers []MarkerSummary `json:"markers"`
	// Streams has one entry per non-empty data stream, by stream number.
	Streams []StreamSummary `json:"streams"`

	// HostPID is the process id on the host of a process recorded
	// host-wide (the host_pid environment value), 0 if not given.
	HostPID int64 `json:"host_pid,omitempty"`
	// Processes has, for a directory of traces (a host-wide recording),
	// the summary of each, by first event; the fields above are then the
	// totals (markers summed by name, no streams).
	Processes []Summary `json:"processes,omitempty"`

	// Warnings are the problems the reader worked around (see
	// ctf.Reader.Warnings), each naming the metadata file and line; for a
	// directory of traces, those of every trace.
	Warnings []string `json:"warnings,omitempty"`
}

// MarkerSummary counts the events of one marker (event class).
type MarkerSummary struct {
	Name   string `json:"name"`
	Events uint64 `json:"events"`
	// Truncated counts the events in which the recorder truncated at
	// least one field.
	Truncated uint64 `json:"truncated"`
}

// StreamSummary counts the events and losses of one data stream.
type StreamSummary struct {
	Stream uint32 `json:"stream"`
	Events uint64 `json:"events"`
	// LostEvents is the number of events the recorder discarded;
	// LostPackets the number of packets missing from the stream.
	LostEvents  uint64 `json:"lost_events"`
	LostPackets uint64 `json:"lost_packets"`
}

// Summarize reads the whole trace in directory inDir and summarizes it. It
// reads one event at a time, so memory use does not grow with the size of
// the trace. If the trace is corrupt or truncated, it returns the summary
// of the events before the problem together with the reader's error (a
// *ctf.CorruptError naming the file and byte offset).
//
// A directory that holds no trace itself but traces below it, such as
// the output of a host-wide recording, is summarized trace by trace
// (Processes) with the totals.
func Summarize(inDir string) (Summary, error) {
	if isSet(inDir) {
		return summarizeSet(inDir)
	}
	r, err := ctf.Open(inDir)
	if err != nil {
		return Summary{Dir: inDir}, err
	}
	defer r.Close()
	info := r.Info()
	s := Summary{
		Warnings: readerWarnings(inDir, r),
		Dir:      inDir,
		Program:  info.Env["procname"],
		Host:     info.Env["hostname"],
		Name:     info.Env["trace_name"],
		Env:      info.Env,
		Clock:    info.Clock.Name,
	}
	if s.Env == nil {
		s.Env = map[string]string{}
	}
	if pid, err := strconv.ParseInt(info.Env["vpid"], 10, 64); err == nil {
		s.PID = pid
	}
	classes := r.Classes()
	markers := make(map[uint16]int, len(classes)) // class ID → index in s.Markers
	s.Markers = make([]MarkerSummary, len(classes))
	for i, ec := range classes {
		s.Markers[i].Name = ec.Name
		markers[ec.ID] = i
	}
	streams := map[uint32]*StreamSummary{}
	for _, id := range r.Streams() {
		streams[id] = &StreamSummary{Stream: id}
	}
	var first, last int64
	var readErr error
	for ev, err := range r.Events() {
		if err != nil {
			readErr = err
			break
		}
		st := streams[ev.Stream]
		if st == nil { // not reached: the reader reads only r.Streams()
			st = &StreamSummary{Stream: ev.Stream}
			streams[ev.Stream] = st
		}
		if ev.Class == nil {
			st.LostEvents = addSat(st.LostEvents, ev.Discarded)
			st.LostPackets = addSat(st.LostPackets, ev.LostPackets)
			continue
		}
		st.Events++
		if s.Events == 0 {
			first = ev.Time
		}
		last = ev.Time
		s.Events++
		i, ok := markers[ev.Class.ID]
		if !ok { // not reached: the reader knows only r.Classes()
			i = len(s.Markers)
			s.Markers = append(s.Markers, MarkerSummary{Name: ev.Class.Name})
			markers[ev.Class.ID] = i
		}
		m := &s.Markers[i]
		m.Events++
		if ev.Truncated != 0 {
			m.Truncated++
		}
	}
	if s.Events > 0 {
		s.First = time.Unix(0, first).UTC()
		s.Last = time.Unix(0, last).UTC()
		s.Duration = time.Duration(last - first)
	}
	for _, st := range streams {
		s.Streams = append(s.Streams, *st)
		s.LostEvents = addSat(s.LostEvents, st.LostEvents)
		s.LostPackets = addSat(s.LostPackets, st.LostPackets)
	}
	slices.SortFunc(s.Streams, func(a, b StreamSummary) int { return cmp.Compare(a.Stream, b.Stream) })
	slices.SortStableFunc(s.Markers, func(a, b MarkerSummary) int { return strings.Compare(a.Name, b.Name) })
	return s, readErr
}

// WriteText writes the summary as aligned text for people:
//
//	trace     /tmp/trace
//	program   app (pid 4242) on testhost
//	name      unit
//	clock     monotonic
//	first     2023-11-14T22:13:20.000000100Z
//	last      2023-11-14T22:13:20.000000200Z
//	duration  100ns
//	events    12
//	lost      15 events, 1 packet
//
//	MARKER         EVENTS  TRUNCATED
//	floats              4          0
//	...
//
//	STREAM  EVENTS  LOST EVENTS  LOST PACKETS
//	0            4            0             0
//	...
func (s *Summary) WriteText(w io.Writer) error {
	if s.Processes != nil {
		return s.writeSetText(w)
	}
	bw := bufio.NewWriter(w)
	kv := func(k, v string) { fmt.Fprintf(bw, "%-9s %s\n", k, v) }
	kv("trace", s.Dir)
	if s.Program != "" || s.PID != 0 || s.Host != "" {
		var b strings.Builder
		b.WriteString(cmp.Or(s.Program, "?"))
		if s.PID != 0 {
			fmt.Fprintf(&b, " (pid %d)", s.PID)
		}
		if s.Host != "" {
			fmt.Fprintf(&b, " on %s", s.Host)
		}
		kv("program", b.String())
	}
	if s.Name != "" {
		kv("name", s.Name)
	}
	s.writeSpan(kv)

	if len(s.Markers) > 0 {
		rows := [][]string{{"MARKER", "EVENTS", "TRUNCATED"}}
		for _, m := range s.Markers {
			rows = append(rows, []string{m.Name, strconv.FormatUint(m.Events, 10), strconv.FormatUint(m.Truncated, 10)})
		}
		bw.WriteByte('\n')
		writeTable(bw, rows)
	}
	if len(s.Streams) > 0 {
		rows := [][]string{{"STREAM", "EVENTS", "LOST EVENTS", "LOST PACKETS"}}
		for _, st := range s.Streams {
			rows = append(rows, []string{strconv.FormatUint(uint64(st.Stream), 10), strconv.FormatUint(st.Events, 10),
				strconv.FormatUint(st.LostEvents, 10), strconv.FormatUint(st.LostPackets, 10)})
		}
		bw.WriteByte('\n')
		writeTable(bw, rows)
	}
	writeWarnings(bw, s.Warnings)
	return bw.Flush()
}

// readerWarnings returns the reader's warnings, each prefixed with the
// metadata file it is about.
func readerWarnings(dir string, r *ctf.Reader) []string {
	var out []string
	for _, w := range r.Warnings() {
		out = append(out, filepath.Join(dir, "metadata")+": "+w)
	}
	return out
}

func writeWarnings(bw *bufio.Writer, ws []string) {
	if len(ws) > 0 {
		bw.WriteByte('\n')
	}
	for _, w := range ws {
		fmt.Fprintf(bw, "warning: %s\n", w)
	}
}

// addSat adds counts, saturating at the largest uint64 (a corrupt trace
// can claim any number of lost events).
func addSat(a, b uint64) uint64 {
	if a+b < a {
		return math.MaxUint64
	}
	return a + b
}

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.FormatUint(n, 10) + " " + what + "s"
}

// writeTable writes rows in columns separated by two spaces: the first
// column left-aligned, the others (numbers) right-aligned. Widths count
// runes, so that names with accents stay aligned.
func writeTable(w *bufio.Writer, rows [][]string) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	for _, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-len([]rune(cell)))
			switch {
			case i == 0:
				line.WriteString(cell)
				if len(row) > 1 {
					line.WriteString(pad)
				}
			default:
				line.WriteString("  ")
				line.WriteString(pad)
				line.WriteString(cell)
			}
		}
		w.WriteString(line.String())
		w.WriteByte('\n')
	}
}

// writeSpan writes the lines a trace's and a directory's summaries share:
// clock, time span, events and losses.
func (s *Summary) writeSpan(kv func(k, v string)) {
	kv("clock", s.Clock)
	if s.Events > 0 {
		kv("first", s.First.Format(encode.TimeLayout))
		kv("last", s.Last.Format(encode.TimeLayout))
		kv("duration", s.Duration.String())
	}
	kv("events", strconv.FormatUint(s.Events, 10))
	lost := "none"
	if s.LostEvents > 0 || s.LostPackets > 0 {
		lost = plural(s.LostEvents, "event") + ", " + plural(s.LostPackets, "packet")
	}
	kv("lost", lost)
}
