package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/tracemark/tracemark/internal/wire"
)

// liveView redraws a block of text in place on a terminal, like top or
// bpftrace's maps. On anything else it does nothing until the final
// block, so logs and pipes get only results.
//
// The block is clipped to the terminal: a line longer than the width is
// cut (a wrapped line would take two rows where the cursor movement
// counts one) and a block taller than the height keeps its first rows
// (the cursor cannot move above the top of the screen, so every redraw
// of a taller block would leave a copy in the scrollback). The final
// block, printed after erase, is not clipped.
type liveView struct {
	w     io.Writer
	tty   bool
	lines int // lines of the block on screen
	// size returns the terminal's rows and columns, ok false if unknown.
	size func() (rows, cols int, ok bool)
}

func newLiveView(w io.Writer, tty bool) *liveView {
	return &liveView{w: w, tty: tty, size: func() (int, int, bool) { return termSize(w) }}
}

// show replaces the block on screen with text (which ends with a newline).
func (v *liveView) show(text string) {
	if !v.tty {
		return
	}
	if rows, cols, ok := v.size(); ok {
		text = clip(text, rows, cols)
	}
	v.erase()
	fmt.Fprint(v.w, text)
	v.lines = strings.Count(text, "\n")
}

// erase removes the block from the screen.
func (v *liveView) erase() {
	if v.tty && v.lines > 0 {
		// Back to column 0 first: the terminal may have echoed something
		// since (a ^C), and the cursor moves up without changing column.
		// Then up to the block's first line, and clear to the end.
		fmt.Fprintf(v.w, "\r\x1b[%dA\x1b[J", v.lines)
		v.lines = 0
	}
}

// clip fits text (lines ending in newlines) into a terminal of rows and
// cols: at most rows-1 lines, so that the cursor below the block is still
// on screen, each shorter than cols. Cut rows are counted in the last line.
func clip(text string, rows, cols int) string {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if max := rows - 1; len(lines) > max && max >= 1 {
		cut := len(lines) - (max - 1)
		lines = append(lines[:max-1], fmt.Sprintf("... %d more %s (the final table has all)", cut, plural(cut, "line", "lines")))
	}
	var b strings.Builder
	for _, l := range lines {
		if n := 0; cols > 1 {
			for i := range l {
				if n == cols-1 {
					l = l[:i]
					break
				}
				n++
			}
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")) }
func (t *table) flush()              { t.tw.Flush() }

// writeJSON prints v indented, for --json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// clean makes text from a traced process safe to print: the process may
// put terminal escape sequences in a program name or a field value.
func clean(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// cleanReason makes a reason from a traced process (a refusal, a taint
// explanation) printable on one line: line breaks become "; " rather
// than the literal \n that clean would show.
func cleanReason(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return clean(strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), "; "))
}

// spaced returns s with a leading space, or "" for "": "Loaded raw into"
// rather than "Loaded raw - into" for a module without a version.
func spaced(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}

// count says n things: "1 marker", "2 markers" (one is the singular,
// which takes an s).
func count(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + one + "s"
}

// endReason says why a recording ended, for the summary line.
func endReason(reason string) string {
	switch reason {
	case wire.EndDuration:
		return "--duration elapsed"
	case wire.EndShutdown:
		return "the process is exiting"
	}
	return reason
}

// humanBytes formats a byte count.
func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// since formats an elapsed time for humans.
func since(t time.Time) string {
	d := time.Since(t).Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return d.String()
}

// dash shows an empty cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
