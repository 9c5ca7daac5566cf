package format

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/chromejson"
	"github.com/tracemark/tracemark/format/jsonl"
	"github.com/tracemark/tracemark/format/perfetto"
	"github.com/tracemark/tracemark/format/text"
)

// ErrNoTrace is returned for a directory that holds no CTF trace, neither
// itself nor below it.
var ErrNoTrace = errors.New("no CTF trace")

// TraceDirs returns the traces in dir: dir itself if it holds one (a
// metadata file), else every directory below it that does, in path
// order, as a host-wide recording writes them (one per process).
func TraceDirs(dir string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, "metadata")); err == nil {
		return []string{dir}, nil
	}
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "metadata" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%w in %s (no metadata file in it or below it)", ErrNoTrace, dir)
	}
	slices.Sort(dirs)
	return dirs, nil
}

// isSet reports whether dir is a directory of traces rather than a trace.
func isSet(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "metadata")); err == nil {
		return false
	}
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}

// setReader merges the events of many traces in time order, as
// Babeltrace's muxer does: the earliest pending event first, ties in
// trace order. The traces share a clock base (a host-wide recording),
// else the order is only as good as their clock offsets.
type setReader struct {
	dirs  []string
	rs    []*ctf.Reader
	infos []ctf.TraceInfo
	cur   []*ctf.Event // pending event per trace; nil when it is done
	errs  []error
}

func openSet(dirs []string) (*setReader, error) {
	s := &setReader{dirs: dirs}
	for _, d := range dirs {
		r, err := ctf.Open(d)
		if err != nil {
			s.close()
			return nil, err
		}
		s.rs = append(s.rs, r)
		s.infos = append(s.infos, r.Info())
	}
	s.cur = make([]*ctf.Event, len(s.rs))
	for i := range s.rs {
		s.advance(i)
	}
	return s, nil
}

// advance reads the next event of trace i; a read error ends that trace
// and is kept for the end.
func (s *setReader) advance(i int) {
	ev, err := s.rs[i].Next()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			s.errs = append(s.errs, err)
		}
		s.cur[i] = nil
		return
	}
	s.cur[i] = ev
}

// next returns the earliest pending event and its trace, or io.EOF. The
// event is valid until the next call. Many traces are few enough (one
// per process) that a linear scan beats a heap's bookkeeping.
func (s *setReader) next(last int) (*ctf.Event, int, error) {
	if last >= 0 {
		s.advance(last)
	}
	best := -1
	for i, ev := range s.cur {
		if ev != nil && (best < 0 || ev.Time < s.cur[best].Time) {
			best = i
		}
	}
	if best < 0 {
		return nil, -1, io.EOF
	}
	return s.cur[best], best, nil
}

func (s *setReader) err() error { return errors.Join(s.errs...) }

func (s *setReader) close() {
	for _, r := range s.rs {
		r.Close()
	}
}

// pidOf returns a trace's process id and name from its environment: the
// host pid when the recorder gave one, else the trace's vpid.
func pidOf(info ctf.TraceInfo) (int64, string) {
	pid, err := strconv.ParseInt(info.Env["host_pid"], 10, 64)
	if err != nil {
		pid, _ = strconv.ParseInt(info.Env["vpid"], 10, 64)
	}
	return pid, info.Env["procname"]
}

// processWriter is an encoder that can name the process of each event.
type processWriter interface {
	encoder
	SetProcess(pid int64, name string)
}

// convertSet converts a directory of traces to one time-ordered output
// in which every event names its process.
func convertSet(dir, to string, w io.Writer, opts options) error {
	dirs, err := TraceDirs(dir)
	if err != nil {
		return err
	}
	s, err := openSet(dirs)
	if err != nil {
		return err
	}
	defer s.close()
	for i, r := range s.rs {
		opts.warn(readerWarnings(dirs[i], r))
	}
	var enc processWriter
	switch to {
	case Text:
		enc = text.NewWriter(w, opts.Text...)
	case JSONL:
		enc = jsonl.NewWriter(w)
	case ChromeJSON:
		var classes []ctf.EventClass
		for _, r := range s.rs {
			classes = append(classes, r.Classes()...)
		}
		info := s.infos[0]
		delete(info.Env, "trace_name") // one process's, not the set's
		enc = chromejson.NewWriter(w, info, classes)
	case Perfetto:
		procs := make([]perfetto.Process, len(s.rs))
		for i, r := range s.rs {
			pid, name := pidOf(s.infos[i])
			if pid <= 0 {
				pid = unknownPID + int64(i)
			}
			procs[i] = perfetto.Process{PID: pid, Name: name, Info: s.infos[i], Classes: r.Classes()}
		}
		m, err := perfetto.NewMultiWriter(w, procs, opts.Perfetto...)
		if err != nil {
			return err
		}
		enc = &perfettoSet{m: m}
	default:
		return fmt.Errorf("%w %q", ErrUnknownFormat, to) // not reached: Convert checked it
	}
	cur := -1
	for last := -1; ; {
		ev, i, err := s.next(last)
		if err != nil {
			break
		}
		last = i
		if i != cur {
			cur = i
			if p, ok := enc.(*perfettoSet); ok {
				p.cur = i
			} else {
				enc.SetProcess(pidOf(s.infos[i]))
			}
		}
		if err := enc.WriteEvent(ev); err != nil {
			return fmt.Errorf("writing %s output: %w", to, err)
		}
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("writing %s output: %w", to, err)
	}
	return s.err()
}

// unknownPID is the first pid given in Perfetto to the traces of a set
// whose environment gives none (not written by tracemark): above any
// pid_max, so that it names no other process of the set.
const unknownPID = 1 << 30

// perfettoSet writes the events of a set to one Perfetto trace, a
// process track per trace; cur is the trace of the next event.
type perfettoSet struct {
	m   *perfetto.MultiWriter
	cur int
}

func (p *perfettoSet) SetProcess(int64, string)       {}
func (p *perfettoSet) WriteEvent(ev *ctf.Event) error { return p.m.WriteEvent(p.cur, ev) }
func (p *perfettoSet) Close() error                   { return p.m.Close() }

// summarizeSet summarizes a directory of traces: one Summary per trace
// in Processes, the totals in the result.
func summarizeSet(dir string) (Summary, error) {
	out := Summary{Dir: dir, Env: map[string]string{}}
	dirs, err := TraceDirs(dir)
	if err != nil {
		return out, err
	}
	var errs []error
	for _, d := range dirs {
		s, err := Summarize(d)
		if err != nil {
			errs = append(errs, err)
		}
		if rel, rerr := filepath.Rel(dir, d); rerr == nil {
			s.Dir = rel
		}
		if hp, err := strconv.ParseInt(s.Env["host_pid"], 10, 64); err == nil {
			s.HostPID = hp
		}
		out.Processes = append(out.Processes, s)
		out.Warnings = append(out.Warnings, s.Warnings...)
		out.Events += s.Events
		out.LostEvents = addSat(out.LostEvents, s.LostEvents)
		out.LostPackets = addSat(out.LostPackets, s.LostPackets)
		out.Clock = cmp.Or(out.Clock, s.Clock)
		out.Host = cmp.Or(out.Host, s.Host)
		if s.Events > 0 {
			if out.First.IsZero() || s.First.Before(out.First) {
				out.First = s.First
			}
			if s.Last.After(out.Last) {
				out.Last = s.Last
			}
		}
		for _, m := range s.Markers {
			i := slices.IndexFunc(out.Markers, func(o MarkerSummary) bool { return o.Name == m.Name })
			if i < 0 {
				out.Markers = append(out.Markers, MarkerSummary{Name: m.Name})
				i = len(out.Markers) - 1
			}
			out.Markers[i].Events += m.Events
			out.Markers[i].Truncated += m.Truncated
		}
	}
	if !out.First.IsZero() {
		out.Duration = out.Last.Sub(out.First)
	}
	slices.SortStableFunc(out.Markers, func(a, b MarkerSummary) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortStableFunc(out.Processes, func(a, b Summary) int { return a.First.Compare(b.First) })
	return out, errors.Join(errs...)
}

// writeSetText writes the summary of a directory of traces: the totals,
// the markers over all processes, and a row per process.
func (s *Summary) writeSetText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	kv := func(k, v string) { fmt.Fprintf(bw, "%-9s %s\n", k, v) }
	kv("traces", fmt.Sprintf("%s (%d processes)", s.Dir, len(s.Processes)))
	if s.Host != "" {
		kv("host", s.Host)
	}
	s.writeSpan(kv)
	rows := [][]string{{"PID", "PROGRAM", "EVENTS", "LOST", "FIRST", "DURATION", "TRACE"}}
	for _, p := range s.Processes {
		pid := strconv.FormatInt(cmp.Or(p.HostPID, p.PID), 10)
		first, dur := "-", "-"
		if p.Events > 0 {
			first, dur = p.First.Format(time.TimeOnly+".000000000"), p.Duration.String()
		}
		rows = append(rows, []string{pid, cmp.Or(p.Program, "?"), strconv.FormatUint(p.Events, 10),
			strconv.FormatUint(p.LostEvents, 10), first, dur, p.Dir})
	}
	bw.WriteByte('\n')
	writeTable(bw, rows)
	if len(s.Markers) > 0 {
		rows := [][]string{{"MARKER", "EVENTS", "TRUNCATED"}}
		for _, m := range s.Markers {
			rows = append(rows, []string{m.Name, strconv.FormatUint(m.Events, 10), strconv.FormatUint(m.Truncated, 10)})
		}
		bw.WriteByte('\n')
		writeTable(bw, rows)
	}
	writeWarnings(bw, s.Warnings)
	return bw.Flush()
}
