package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair of the given size, with the
// ioctls of /dev/ptmx (no library).
func openPTY(t *testing.T, rows, cols int) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ws := &unix.Winsize{Row: uint16(rows), Col: uint16(cols)}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// ptyProc is the CLI running on a pseudo-terminal as its controlling
// terminal, in its own session (so that ^C on the terminal signals it).
type ptyProc struct {
	cmd    *exec.Cmd
	master *os.File
	term   *vt
	mu     sync.Mutex
	raw    bytes.Buffer
	more   chan struct{} // closed and replaced at every read, or at EOF
	eof    bool
}

func (e *env) startPTY(rows, cols int, args ...string) *ptyProc {
	e.t.Helper()
	m, s := openPTY(e.t, rows, cols)
	cmd := exec.Command(e.exe, args...)
	cmd.Args[0] = "tm-cli"
	cmd.Env = append(e.environ, roleEnv+"=cli", "TERM=xterm")
	cmd.Dir = e.runtime
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	s.Close() // the child has it; the master reads EIO once the child exits
	p := &ptyProc{cmd: cmd, master: m, term: newVT(rows, cols), more: make(chan struct{})}
	go p.read()
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

func (p *ptyProc) read() {
	buf := make([]byte, 4096)
	for {
		n, err := p.master.Read(buf)
		p.mu.Lock()
		p.raw.Write(buf[:n])
		p.term.write(buf[:n])
		if err != nil {
			p.eof = true
		}
		close(p.more)
		p.more = make(chan struct{})
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitRaw waits until the terminal's output so far satisfies ok.
func (p *ptyProc) waitRaw(t *testing.T, what string, ok func(string) bool) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		p.mu.Lock()
		raw, eof, more := p.raw.String(), p.eof, p.more
		p.mu.Unlock()
		if ok(raw) {
			return
		}
		if eof {
			t.Fatalf("waiting for %s: output ended:\n%q", what, raw)
		}
		select {
		case <-more:
		case <-timeout:
			t.Fatalf("timed out waiting for %s:\n%q", what, raw)
		}
	}
}

// wait waits for the process to exit and for its output to end.
func (p *ptyProc) wait(t *testing.T) int {
	t.Helper()
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	for {
		p.mu.Lock()
		eof, more := p.eof, p.more
		p.mu.Unlock()
		if eof {
			return p.cmd.ProcessState.ExitCode()
		}
		select {
		case <-more:
		case <-time.After(30 * time.Second):
			t.Fatal("the terminal's output did not end after the process exited")
		}
	}
}

// vt is a minimal terminal: enough of a VT100 to replay what tracemark
// writes (text, CR, LF, cursor up, erase below, erase line), with
// scrollback, autowrap and a fixed size.
type vt struct {
	rows, cols int
	screen     [][]rune
	r, c       int
	scrolled   []string // lines scrolled off the top, oldest first
	esc        []byte   // a pending escape sequence
	partial    []byte   // a pending UTF-8 sequence
}

func newVT(rows, cols int) *vt {
	v := &vt{rows: rows, cols: cols, screen: make([][]rune, rows)}
	for i := range v.screen {
		v.screen[i] = blank(cols)
	}
	return v
}

func blank(n int) []rune { return []rune(strings.Repeat(" ", n)) }

func (v *vt) write(b []byte) {
	for _, c := range b {
		switch {
		case len(v.esc) > 0:
			v.esc = append(v.esc, c)
			if len(v.esc) == 2 && c != '[' {
				v.esc = nil // a two-byte sequence: ignored
			} else if len(v.esc) > 2 && c >= 0x40 && c <= 0x7e {
				v.csi(string(v.esc[2:len(v.esc)-1]), c)
				v.esc = nil
			}
		case c == 0x1b:
			v.esc = []byte{c}
		case c == '\r':
			v.c = 0
		case c == '\n':
			v.lineFeed()
		case c < 0x20:
		default:
			v.partial = append(v.partial, c)
			if !utf8.FullRune(v.partial) {
				continue
			}
			r, _ := utf8.DecodeRune(v.partial)
			v.partial = v.partial[:0]
			if v.c == v.cols { // autowrap
				v.c = 0
				v.lineFeed()
			}
			v.screen[v.r][v.c] = r
			v.c++
		}
	}
}

func (v *vt) lineFeed() {
	if v.r < v.rows-1 {
		v.r++
		return
	}
	v.scrolled = append(v.scrolled, strings.TrimRight(string(v.screen[0]), " "))
	copy(v.screen, v.screen[1:])
	v.screen[v.rows-1] = blank(v.cols)
}

func (v *vt) csi(params string, final byte) {
	n, err := strconv.Atoi(params)
	if err != nil {
		n = 0
	}
	switch final {
	case 'A':
		v.r = max(0, v.r-max(n, 1))
		v.c = min(v.c, v.cols-1)
	case 'J': // erase below (the only form tracemark uses)
		for i := v.c; i < v.cols; i++ {
			v.screen[v.r][i] = ' '
		}
		for r := v.r + 1; r < v.rows; r++ {
			v.screen[r] = blank(v.cols)
		}
	case 'K':
		for i := v.c; i < v.cols; i++ {
			v.screen[v.r][i] = ' '
		}
	}
}

// lines returns the scrollback and the screen, trailing blank lines cut.
func (v *vt) lines() []string {
	out := append([]string(nil), v.scrolled...)
	for _, row := range v.screen {
		out = append(out, strings.TrimRight(string(row), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// The live stats table, taller than the terminal, is redrawn in place
// without leaving copies in the scrollback, and after Ctrl-C (echoed as
// ^C by the terminal) the final table starts at column 0.
func TestStatsLiveRedrawOnTerminal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	const rows, cols, events = 12, 60, 40
	p := e.startPTY(rows, cols, "stats", "-p", strconv.Itoa(target.pid()), "-e", "test:value", "--by", "i", "--interval", "20ms")
	p.waitRaw(t, "the recording to start", func(s string) bool { return strings.Contains(s, "Counting 1 marker of") })
	target.do(t, fmt.Sprintf("fire %d", events))
	live := fmt.Sprintf(": %d events, 0 lost", events)
	p.waitRaw(t, "three redraws of the full table", func(s string) bool { return strings.Count(s, live) >= 3 })
	if _, err := p.master.Write([]byte{3}); err != nil { // ^C, as typed
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("stats exited %d:\n%s", code, strings.Join(p.term.lines(), "\n"))
	}
	lines := p.term.lines()
	all := strings.Join(lines, "\n")
	for _, l := range lines {
		if strings.Contains(l, live) {
			t.Errorf("a live table was left on the terminal (%q):\n%s", l, all)
			break
		}
		if len([]rune(l)) > cols {
			t.Errorf("line wider than the terminal: %q", l)
		}
	}
	final := regexp.MustCompile(fmt.Sprintf(`^%d events in \d+\.\ds, 0 lost$`, events))
	rowRe := regexp.MustCompile(`^\d+\s+test:value\s+\d+$`)
	finals, tableRows := 0, 0
	for _, l := range lines {
		if final.MatchString(l) {
			finals++
		}
		if rowRe.MatchString(l) {
			tableRows++
		}
	}
	if finals != 1 || tableRows != events {
		t.Errorf("want the final header once at column 0 and %d rows; got %d headers and %d rows:\n%s", events, finals, tableRows, all)
	}
}

func TestClip(t *testing.T) {
	in := "header\nµµµµµµµµµµ\nc\nd\ne\n"
	got := clip(in, 4, 6)
	want := "heade\nµµµµµ\n... 3\n"
	if got != want {
		t.Errorf("clip = %q, want %q", got, want)
	}
	if got := clip(in, 5, 60); got != "header\nµµµµµµµµµµ\nc\n... 2 more lines (the final table has all)\n" {
		t.Errorf("clip to 5 rows = %q", got)
	}
	if got := clip(in, 100, 100); got != in {
		t.Errorf("clip of a block that fits = %q", got)
	}
}

// record's progress line is erased from column 0 after Ctrl-C, so the
// summary starts where it should, not after the echoed ^C.
func TestRecordProgressOnTerminal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	target := e.startTarget()
	dir := e.runtime + "/trace"
	p := e.startPTY(24, 100, "record", "-p", strconv.Itoa(target.pid()), "-e", "test:*", "--interval", "20ms", "-o", dir)
	p.waitRaw(t, "the recording to start", func(s string) bool { return strings.Contains(s, "Recording 2 markers") })
	target.do(t, "fire 77")
	p.waitRaw(t, "the progress line with the events", func(s string) bool { return strings.Contains(s, " 77 events ") })
	if _, err := p.master.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, strings.Join(p.term.lines(), "\n"))
	}
	lines := p.term.lines()
	// The summary line starts at column 0; it goes on with the rate, so
	// it may wrap at the terminal's width.
	summary := regexp.MustCompile(`^Recorded 77 events \(.*\) from pid \d+ \(tm-target\) in \d+\.\ds \(stopped\)[.:]`)
	found := false
	for _, l := range lines {
		found = found || summary.MatchString(l)
		if strings.Contains(l, " 77 events ") && strings.Contains(l, "lost") && !strings.HasPrefix(l, "Recorded") {
			t.Errorf("a progress line was left on the terminal: %q", l)
		}
	}
	if !found {
		t.Errorf("no summary line at column 0:\n%s", strings.Join(lines, "\n"))
	}
}
