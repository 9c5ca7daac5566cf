package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// liveView redraws a block of text in place on a terminal, like top or
// bpftrace's maps. On anything else it does nothing until the final
// block, so logs and pipes get only results.
type liveView struct {
	w     io.Writer
	tty   bool
	lines int // lines of the block on screen
}

func newLiveView(w io.Writer, tty bool) *liveView { return &liveView{w: w, tty: tty} }

// show replaces the block on screen with text (which ends with a newline).
func (v *liveView) show(text string) {
	if !v.tty {
		return
	}
	v.erase()
	fmt.Fprint(v.w, text)
	v.lines = strings.Count(text, "\n")
}

// erase removes the block from the screen.
func (v *liveView) erase() {
	if v.tty && v.lines > 0 {
		// Cursor up to the block's first line, then clear to the end.
		fmt.Fprintf(v.w, "\x1b[%dA\x1b[J", v.lines)
		v.lines = 0
	}
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
