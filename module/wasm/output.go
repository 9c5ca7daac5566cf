package wasm

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// outputWriter receives a module's stdout and stderr. It keeps the start
// of what the module wrote during the running call (for the error of a
// module that dies: Go prints "panic: ..." before exiting) and forwards
// complete lines, prefixed with the module's name, to the host's Output.
type outputWriter struct {
	mu     sync.Mutex
	prefix []byte
	out    io.Writer
	line   []byte // incomplete line for out
	head   []byte // start of this call's output
}

const (
	maxHead = 2048
	maxLine = 4096
)

func newOutputWriter(name string, out io.Writer) *outputWriter {
	return &outputWriter{prefix: []byte(name + ": "), out: out}
}

func (w *outputWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := maxHead - len(w.head); room > 0 {
		w.head = append(w.head, p[:min(room, len(p))]...)
	}
	if w.out == nil {
		return len(p), nil
	}
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			w.line = append(w.line, rest[:min(len(rest), maxLine-len(w.line))]...)
			break
		}
		w.line = append(w.line, rest[:min(i, maxLine-len(w.line))]...)
		rest = rest[i+1:]
		msg := append(append(append([]byte(nil), w.prefix...), w.line...), '\n')
		w.line = w.line[:0]
		w.out.Write(msg)
	}
	return len(p), nil
}

// reset forgets the previous call's output. Called with the instance's
// lock held, as Write is (the module writes during its calls): head
// cannot change meanwhile, and a call that wrote nothing (the usual)
// takes no lock to forget it.
func (w *outputWriter) reset() {
	if len(w.head) == 0 {
		return
	}
	w.mu.Lock()
	w.head = w.head[:0]
	w.mu.Unlock()
}

// hint returns ": " and the most telling line the module wrote during the
// call ("panic: ...", "fatal error: ...", else the first), or "".
func (w *outputWriter) hint() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first string
	for _, l := range strings.Split(string(w.head), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") {
			return ": " + sanitize(l)
		}
		if first == "" {
			first = l
		}
	}
	if first == "" {
		return ""
	}
	return ": " + sanitize(first)
}

// sanitize keeps a module's text printable and short.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
